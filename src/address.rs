//! Email addresses and header values as they enter helpdesk (`user add`,
//! the configuration): one rule each, the same the sender applies, so an
//! address that is accepted here can be sent to, and one that cannot is
//! refused where it is typed rather than at every flush. Converting a
//! domain to its ASCII form for a server without SMTPUTF8 happens when the
//! message is sent, not here.

use std::str::FromStr;

use lettre::message::Mailbox;
use lettre::{Address, Message};

/// The longest line a message may have (RFC 5322 §2.1.1), without CRLF.
const MAX_LINE: usize = 998;

/// Why a value typed as input (a command-line argument, a configuration
/// key) was refused, naming the field it came from. One wording for every
/// input path: `{field} contains a line break, …`, `{field} has an invalid
/// email address `…`: {reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// A CR or LF, which would start a mail header of its own.
    LineBreak { field: String },
    /// Not an address (or `From` value) the sender can use, and why.
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    /// A name longer than 150 characters or with control characters
    /// (`required`: an empty one is refused too).
    Name { field: String, required: bool },
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressError::LineBreak { field } => write!(
                f,
                "{field} contains a line break, which would break a mail header"
            ),
            AddressError::Invalid {
                field,
                value,
                reason,
            } => write!(
                f,
                "{field} has an invalid email address `{}`: {reason}",
                crate::output::cell(value, 200)
            ),
            AddressError::Name { field, required } => write!(
                f,
                "{field} must be {} 150 characters, without control characters",
                if *required { "1 to" } else { "at most" }
            ),
        }
    }
}

impl std::error::Error for AddressError {}

/// Refuses a value that would end up in a mail header if it holds a line
/// break (CR or LF), which would start a header of its own. `field` names
/// where it was typed (`` `--name` ``, `` `default_from_email` ``).
pub fn check_header_value(field: &str, value: &str) -> Result<(), AddressError> {
    if value.contains(['\r', '\n']) {
        return Err(AddressError::LineBreak {
            field: field.to_string(),
        });
    }
    Ok(())
}

/// A person's or a group's name as typed: at most 150 characters, no
/// control characters (so no line break either, named as such), and not
/// empty when `required`.
pub fn check_name(field: &str, value: &str, required: bool) -> Result<(), AddressError> {
    check_header_value(field, value)?;
    if (required && value.is_empty())
        || value.chars().count() > 150
        || value.chars().any(char::is_control)
    {
        return Err(AddressError::Name {
            field: field.to_string(),
            required,
        });
    }
    Ok(())
}

/// An address as it enters helpdesk (`user add --email`, `notify test
/// --to`, every address in the configuration): no line break, and one
/// plain address the sender can use (`parse`). `field` names where it was
/// typed. The text is taken as written, on the command line as in the
/// configuration: spaces around an address are refused, not trimmed.
pub fn parse_input(field: &str, text: &str) -> Result<Address, AddressError> {
    check_header_value(field, text)?;
    parse(text).map_err(|reason| invalid(field, text, reason))
}

/// A `From` value as it enters helpdesk (`default_from_email`): no line
/// break, and a mailbox the sender can use (`parse_mailbox`).
pub fn parse_input_mailbox(field: &str, text: &str) -> Result<Mailbox, AddressError> {
    check_header_value(field, text)?;
    parse_mailbox(text).map_err(|reason| invalid(field, text, reason))
}

fn invalid(field: &str, text: &str, reason: String) -> AddressError {
    AddressError::Invalid {
        field: field.to_string(),
        value: text.to_string(),
        reason,
    }
}

/// One plain address (`name@example.org`) that the sender can put in an
/// envelope and a `To` header; the reason says what is wrong otherwise, in
/// words (the caller names the value and where it came from).
pub fn parse(value: &str) -> Result<Address, String> {
    sendable(value).ok_or_else(|| why_not(value))
}

/// The sender's rule: lettre parses the address, and a message to it can
/// be built (lettre reads the envelope back from the `To` header it wrote,
/// which is where `"a b"@…` and `@[…]` fail).
fn sendable(value: &str) -> Option<Address> {
    let address = Address::from_str(value).ok()?;
    let from = Address::new("helpdesk", "localhost").ok()?;
    Message::builder()
        .from(Mailbox::new(None, from))
        .to(Mailbox::new(None, address.clone()))
        .body(String::new())
        .ok()?;
    Some(address)
}

/// Why the sender cannot use `value`, in words, for the usual mistakes.
fn why_not(value: &str) -> String {
    let general = "it is not an email address that can be sent to: write it as name@example.org";
    if value.trim().is_empty() {
        return "it is empty: write it as name@example.org".into();
    }
    let parts: Vec<&str> = value
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() > 1 && parts.iter().all(|p| p.contains('@')) {
        return "it is a list of addresses, not one address: give one".into();
    }
    if value.contains(['<', '>']) {
        return "give the address alone, without a name or `<…>`".into();
    }
    if value != value.trim() {
        return "it has spaces around it".into();
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return "it has no `@`: write it as name@example.org".into();
    };
    if local.starts_with('"') {
        return "a quoted local part (`\"…\"@`) cannot be sent to".into();
    }
    if domain.starts_with('[') {
        return "an address literal (`@[…]`) cannot be sent to: use a domain name".into();
    }
    general.into()
}

/// A `From` value: an address with an optional display name
/// (`Helpdesk <help@example.org>`), under the same rule as `parse`, whose
/// header line fits in a message (998 characters).
pub fn parse_mailbox(value: &str) -> Result<Mailbox, String> {
    // The address part under the address rule first, for its reasons.
    let address = match value.rsplit_once('<') {
        Some((_, rest)) => rest.strip_suffix('>').ok_or_else(|| {
            "a `<` without its `>`: write it as Name <name@example.org>".to_string()
        })?,
        None => value,
    };
    parse(address.trim())?;
    // Then the whole value as the sender reads it.
    let mailbox = Mailbox::from_str(value.trim()).map_err(|_| {
        "the name cannot be read: put it in double quotes, as \"Name, Team\" <name@example.org>"
            .to_string()
    })?;
    let line = format!("From: {mailbox}");
    if line.chars().count() > MAX_LINE {
        return Err(format!(
            "the `From` line would be {} characters long, and a mail header line holds at most {MAX_LINE}: shorten the name",
            line.chars().count()
        ));
    }
    Message::builder()
        .from(mailbox.clone())
        .to(mailbox.clone())
        .body(String::new())
        .map_err(|_| "it is not an address that mail can be sent from".to_string())?;
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
    fn builds(to: &str) -> bool {
        let content = EmailContent {
            subject: "s".into(),
            html: "h".into(),
            text: "t".into(),
        };
        message::build(
            &Addressing {
                key: 1,
                from: &"Helpdesk <help@example.org>".parse().unwrap(),
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
                builds(address),
                "{address}: {:?}",
                parse(address)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
            failure_persistence: None,
            ..Default::default()
        })]

        /// Whatever is typed, input and sender agree: accepted here exactly
        /// when a message to it can be built.
        #[test]
        fn input_and_sender_agree(
            local in "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\\-\" ()<>,;:\\[\\]@äü]{0,12}",
            domain in "[a-zA-Z0-9.\\-\\[\\]:ä ]{0,14}",
        ) {
            let address = format!("{local}@{domain}");
            proptest::prop_assert_eq!(parse(&address).is_ok(), builds(&address), "{:?}: {:?}", address, parse(&address));
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
        assert!(parse_mailbox("\"Help, Desk\" <help@example.org>").is_ok());
        assert_eq!(
            parse_mailbox("Help, Desk <help@example.org>").unwrap_err(),
            "the name cannot be read: put it in double quotes, as \"Name, Team\" <name@example.org>"
        );
    }

    #[test]
    fn input_errors_name_the_field_in_one_wording() {
        assert_eq!(
            check_header_value("`--name`", "a\r\nBcc: x@evil.test")
                .unwrap_err()
                .to_string(),
            "`--name` contains a line break, which would break a mail header"
        );
        assert!(check_header_value("`--name`", "Ann").is_ok());
        assert_eq!(
            parse_input("`--email`", "a@example.org\nBcc: x@evil.test")
                .unwrap_err()
                .to_string(),
            "`--email` contains a line break, which would break a mail header"
        );
        assert_eq!(
            parse_input("`admins`", "nobody").unwrap_err().to_string(),
            "`admins` has an invalid email address `nobody`: it has no `@`: write it as name@example.org"
        );
        assert_eq!(
            parse_input_mailbox("`default_from_email`", "Help <a@b\r>")
                .unwrap_err()
                .to_string(),
            "`default_from_email` contains a line break, which would break a mail header"
        );
        assert_eq!(
            check_name("the group name", "", true)
                .unwrap_err()
                .to_string(),
            "the group name must be 1 to 150 characters, without control characters"
        );
        assert_eq!(
            check_name("`--name`", &"n".repeat(151), false)
                .unwrap_err()
                .to_string(),
            "`--name` must be at most 150 characters, without control characters"
        );
        assert!(check_name("`--name`", "", false).is_ok());
        assert_eq!(
            parse_input("`--to`", "a@example.org").unwrap().to_string(),
            "a@example.org"
        );
    }
}
