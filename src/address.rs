//! Email addresses and header values as they enter helpdesk (`user add`,
//! the configuration): one rule each, the same the sender applies, so an
//! address that is accepted here can be sent to, and one that cannot is
//! refused where it is typed rather than at every flush. Converting a
//! domain to its ASCII form for a server without SMTPUTF8 happens when the
//! message is sent, not here.

use std::str::FromStr;

use lettre::Address;
use lettre::message::Mailbox;

/// The longest line a message may have (RFC 5322 §2.1.1), without CRLF.
const MAX_LINE: usize = 998;

/// Refuses a value that would end up in a mail header if it holds a line
/// break (CR or LF), which would start a header of its own. The reason
/// names `what` (`the name`, `` `default_from_email` ``).
pub fn check_no_line_break(what: &str, value: &str) -> Result<(), String> {
    if value.contains(['\r', '\n']) {
        return Err(format!(
            "{what} contains a line break, which would break a mail header"
        ));
    }
    Ok(())
}

/// One plain address (`name@example.org`) that the sender can put in an
/// envelope and a `To` header; the reason says what is wrong otherwise, in
/// words (the caller names the value and where it came from).
pub fn parse(value: &str) -> Result<Address, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("it is empty: write it as name@example.org".into());
    }
    let parts: Vec<&str> = value
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() > 1 && parts.iter().all(|p| p.contains('@')) {
        return Err("it is a list of addresses, not one address: give one".into());
    }
    if value.contains('<') || value.contains('>') {
        return Err("give the address alone, without a name or `<…>`".into());
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("it has no `@`: write it as name@example.org".into());
    };
    if local.starts_with('"') {
        return Err("a quoted local part (`\"…\"@`) cannot be sent to".into());
    }
    if domain.starts_with('[') {
        return Err("an address literal (`@[…]`) cannot be sent to: use a domain name".into());
    }
    let address = Address::from_str(value)
        .map_err(|_| "it is not an email address: write it as name@example.org".to_string())?;
    // The sender writes the address into a header and reads it back from
    // there: what does not survive that cannot be sent.
    let shown = Mailbox::new(None, address.clone()).to_string();
    match Mailbox::from_str(&shown) {
        Ok(back) if back.email == address => Ok(address),
        _ => Err(
            "it is not an email address that can be sent to: write it as name@example.org".into(),
        ),
    }
}

/// A `From` value: an address with an optional display name
/// (`Helpdesk <help@example.org>`), under the same rule as `parse`, whose
/// header line fits in a message (998 characters).
pub fn parse_mailbox(value: &str) -> Result<Mailbox, String> {
    let value = value.trim();
    let (name, address) = match value.rsplit_once('<') {
        Some((name, rest)) => {
            let Some(address) = rest.strip_suffix('>') else {
                return Err("a `<` without its `>`: write it as Name <name@example.org>".into());
            };
            (Some(name.trim().trim_matches('"').to_string()), address)
        }
        None => (None, value),
    };
    let address = parse(address)?;
    let mailbox = Mailbox::new(name.filter(|n| !n.is_empty()), address);
    let line = format!("From: {mailbox}");
    if line.chars().count() > MAX_LINE {
        return Err(format!(
            "the `From` line would be {} characters long, and a mail header line holds at most {MAX_LINE}: shorten the name",
            line.chars().count()
        ));
    }
    Ok(mailbox)
}

/// Whether the address needs a server that speaks SMTPUTF8 (its local part
/// is not ASCII; a non-ASCII domain is converted to ASCII when sending).
pub fn needs_smtputf8(address: &Address) -> bool {
    !address.user().is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::content::EmailContent;
    use crate::notify::message::{self, Addressing, Prepared};

    /// Whether the sender can build a message to `to`.
    fn sendable(to: &str) -> bool {
        let content = EmailContent {
            subject: "s".into(),
            html: "h".into(),
            text: "t".into(),
        };
        message::build(
            &Addressing {
                key: 1,
                from: "Helpdesk <help@example.org>",
                to,
                message_id: None,
                ticket_id: None,
            },
            &Prepared::new(&content),
        )
        .is_ok()
    }

    #[test]
    fn accepted_exactly_when_the_sender_can_send() {
        for address in [
            "dev@example.org",
            "Dev.Two+tag@Example.org",
            "o'brien@example.org",
            "x@exämple.org",
            "ünï@example.org",
            "\"a b\"@example.org",
            "a@[127.0.0.1]",
            "a b@example.org",
            "a@b",
            "@example.org",
            "a@",
            "a..b@example.org",
            ".a@example.org",
            "a(comment)@example.org",
        ] {
            assert_eq!(
                parse(address).is_ok(),
                sendable(address),
                "{address}: {:?}",
                parse(address)
            );
        }
    }

    #[test]
    fn each_refusal_says_why_in_words() {
        let reason = |v: &str| parse(v).unwrap_err();
        assert_eq!(
            reason("zed@example.org, x@y.org"),
            "it is a list of addresses, not one address: give one"
        );
        assert_eq!(
            reason("\"a b\"@example.org"),
            "a quoted local part (`\"…\"@`) cannot be sent to"
        );
        assert_eq!(
            reason("a@[127.0.0.1]"),
            "an address literal (`@[…]`) cannot be sent to: use a domain name"
        );
        assert_eq!(
            reason("nobody"),
            "it has no `@`: write it as name@example.org"
        );
        assert_eq!(reason("  "), "it is empty: write it as name@example.org");
    }

    #[test]
    fn a_from_line_longer_than_a_header_line_is_refused() {
        let name = "N".repeat(1_800);
        let err = parse_mailbox(&format!("{name} <help@example.org>")).unwrap_err();
        assert_eq!(
            err,
            "the `From` line would be 1825 characters long, and a mail header line holds at most 998: shorten the name"
        );
        assert!(parse_mailbox(&format!("{} <help@example.org>", "N".repeat(900))).is_ok());
        assert!(parse_mailbox("Helpdesk <help@example.org>").is_ok());
        assert!(parse_mailbox("help@example.org").is_ok());
    }

    #[test]
    fn a_line_break_is_named() {
        assert_eq!(
            check_no_line_break("the name", "a\r\nBcc: x@evil.test").unwrap_err(),
            "the name contains a line break, which would break a mail header"
        );
        assert!(check_no_line_break("the name", "Ann").is_ok());
    }
}
