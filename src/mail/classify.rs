//! What an inbound message becomes (SPEC §6), decided in the SPEC's order:
//! bounce, ignored, refused, comment, new ticket. [`classify`] is a pure
//! function of the parsed message, the inbound configuration and the answers
//! of a [`Lookup`], which the store implements over its own transaction (so a
//! database error surfaces as `Lookup::Error` and the command can exit 75).
//!
//! Writing the outcome (marking a notification failed, suppressing an address,
//! adding the comment or ticket with the received Message-ID in the same
//! transaction, keeping refusals for `mail list`) is the command's and the
//! store's. Each outcome carries the reason text `mail list` and the JSON
//! `reason` show.

use std::fmt;

use super::auth;
use super::parse::{DsnRecipient, FromProblem, Inbound, ReturnPath, is_address};
use super::text;

pub use crate::model::TicketId;
use crate::model::{NotificationId, UserId};

/// An email notification helpdesk sent, as the store finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRef {
    pub id: NotificationId,
    pub ticket_id: TicketId,
    /// The address it was sent to.
    pub to_addr: String,
}

/// An active user, as the store finds one by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
}

/// The questions classification asks the store. Message-IDs are passed in
/// angle brackets (`<…>`), the form helpdesk stores its own in; addresses as the
/// message wrote them (the store compares them case-insensitively).
pub trait Lookup {
    /// What the store can fail with (busy, unreachable).
    type Error;
    /// The email notification sent with this Message-ID (`<event.user.nonce@host>`
    /// today; whatever format `notify` mints, the store knows it by value).
    fn our_notification_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<NotificationRef>, Self::Error>;
    /// The latest email notification about `ticket` sent to `address`: how a
    /// report that returns no headers is matched through a `+N` tag.
    fn our_notification_for_ticket_recipient(
        &self,
        ticket: TicketId,
        address: &str,
    ) -> Result<Option<NotificationRef>, Self::Error>;
    /// The ticket whose thread root (`<ticket-N.<random>@host>`, stored with the
    /// ticket) is this Message-ID.
    fn ticket_by_thread_id(&self, message_id: &str) -> Result<Option<TicketId>, Self::Error>;
    fn ticket_exists(&self, ticket: TicketId) -> Result<bool, Self::Error>;
    /// The active user with this address (case-insensitive), if any.
    fn active_user_by_email(&self, address: &str) -> Result<Option<UserRef>, Self::Error>;
    /// A message with this Message-ID was handled before (a redelivery).
    fn already_received(&self, message_id: &str) -> Result<bool, Self::Error>;
}

/// `email.inbound` as classification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundConfig {
    /// The help desk's address, `help@example.org`; `help+N@example.org` names
    /// ticket N.
    pub address: String,
    /// The `authserv-id` of the server whose `Authentication-Results` counts;
    /// `None` trusts `From` as written.
    pub trusted_authserv_id: Option<String>,
}

/// The JSON `action`.
pub use crate::model::ReceivedAction as Action;

/// A failure report about a notification helpdesk sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub notification: NotificationRef,
    /// The failed recipient block (the one for the notification's address when
    /// the report names it).
    pub recipient: DsnRecipient,
    /// 5.x.x: the address goes on the suppression list.
    pub permanent: bool,
}

impl Bounce {
    /// The address to suppress on a permanent failure: the one helpdesk sent to.
    pub fn address(&self) -> &str {
        &self.notification.to_addr
    }

    /// The notification's last error: status and diagnostic, as the report gave
    /// them (`5.1.1 smtp; 550 5.1.1 <x>: Recipient address rejected`).
    pub fn last_error(&self) -> String {
        let status = self.recipient.status.as_deref().unwrap_or("failed");
        match &self.recipient.diagnostic {
            Some(diagnostic) => format!("bounced: {status} {diagnostic}"),
            None => format!("bounced: {status}"),
        }
    }
}

/// Why a message is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    AutoSubmitted(String),
    Precedence(String),
    EmptyReturnPath,
    AutoReplyHeader(String),
    /// A delivery report whose original message is not one of ours.
    ReportNotOurs,
    /// A delivery report about our mail that reports no failure (`delayed`).
    ReportNotFailure(String),
    /// A `multipart/report` of another kind (read receipts).
    OtherReport(String),
    /// `X-Helpdesk-Ticket`: helpdesk's own mail coming back.
    OwnMail,
    /// The Message-ID is one helpdesk sent.
    OwnMessageId,
    AlreadyReceived(String),
}

impl fmt::Display for Ignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignore::AutoSubmitted(v) => write!(f, "automatic mail (Auto-Submitted: {v})"),
            Ignore::Precedence(v) => write!(f, "bulk mail (Precedence: {v})"),
            Ignore::EmptyReturnPath => f.write_str("automatic mail (empty return path)"),
            Ignore::AutoReplyHeader(h) => write!(f, "automatic reply ({h})"),
            Ignore::ReportNotOurs => {
                f.write_str("a delivery report about mail helpdesk did not send")
            }
            Ignore::ReportNotFailure(action) => {
                write!(f, "a delivery report that is not a failure ({action})")
            }
            Ignore::OtherReport(kind) => write!(f, "an automatic report ({kind})"),
            Ignore::OwnMail => f.write_str("helpdesk's own mail (X-Helpdesk-Ticket)"),
            Ignore::OwnMessageId => f.write_str("helpdesk's own mail (its Message-ID)"),
            Ignore::AlreadyReceived(id) => write!(f, "already received ({id})"),
        }
    }
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Sender(FromProblem),
    NotAuthenticated,
    UnknownSender(String),
    NoSuchTicket(TicketId),
    NoMessageId,
    NotAddressed(String),
    EmptyReply,
    EmptyMessage,
    /// Larger than the configured cap (bytes); the command read no further.
    TooLarge(usize),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Sender(problem) => problem.fmt(f),
            Refusal::NotAuthenticated => f.write_str("not authenticated"),
            Refusal::UnknownSender(a) => write!(f, "no active user has the address `{a}`"),
            Refusal::NoSuchTicket(id) => write!(f, "ticket #{id} does not exist"),
            Refusal::NoMessageId => {
                f.write_str("no Message-ID, so it could not be recorded exactly once")
            }
            Refusal::NotAddressed(a) => write!(f, "not addressed to `{a}`"),
            Refusal::EmptyReply => f.write_str("empty reply"),
            Refusal::EmptyMessage => f.write_str("empty message"),
            Refusal::TooLarge(limit) => write!(f, "larger than the limit of {} bytes", limit),
        }
    }
}

/// How a comment's ticket was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// A Message-ID of ours in `In-Reply-To` or `References`.
    MessageId,
    /// A `+N` tag on the inbound address in `To`, `Cc` or `Delivered-To`.
    AddressTag,
    /// `[#N]` or `ticket #N` in the subject.
    Subject,
}

/// A comment by email, as `ticket comment --by` would add it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub ticket_id: TicketId,
    pub author: UserRef,
    pub text: String,
    pub found_by: FoundBy,
    /// The received Message-ID, recorded with the comment.
    pub message_id: String,
}

/// A new ticket by email (purpose and priority come from the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub author: UserRef,
    /// The subject, a blank line and the body.
    pub description: String,
    /// The received Message-ID, recorded with the ticket.
    pub message_id: String,
}

/// What a message becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Bounce(Bounce),
    Ignored(Ignore),
    Refused(Refusal),
    Comment(Comment),
    Ticket(NewTicket),
}

impl Outcome {
    pub fn action(&self) -> Action {
        match self {
            Outcome::Bounce(_) => Action::Bounce,
            Outcome::Ignored(_) => Action::Ignored,
            Outcome::Refused(_) => Action::Refused,
            Outcome::Comment(_) => Action::Comment,
            Outcome::Ticket(_) => Action::Ticket,
        }
    }

    /// The ticket the outcome is about, where one is known before writing (a new
    /// ticket's ID comes from the store).
    pub fn ticket_id(&self) -> Option<TicketId> {
        match self {
            Outcome::Bounce(b) => Some(b.notification.ticket_id),
            Outcome::Comment(c) => Some(c.ticket_id),
            _ => None,
        }
    }

    /// The JSON `reason`: why it was ignored or refused, what the bounce said;
    /// `None` for a comment or ticket.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::Bounce(b) => Some(b.last_error()),
            Outcome::Ignored(why) => Some(why.to_string()),
            Outcome::Refused(why) => Some(why.to_string()),
            Outcome::Comment(_) | Outcome::Ticket(_) => None,
        }
    }
}

/// Decides what `message` becomes. Pure: the same message, configuration and
/// store answers give the same outcome. Errors are the store's only.
pub fn classify<L: Lookup>(
    message: &Inbound,
    config: &InboundConfig,
    store: &L,
) -> Result<Outcome, L::Error> {
    // 1. Bounce: reports carry Auto-Submitted and `<>`, so before those rules.
    if let Some(report) = &message.report
        && report.is_delivery_status()
    {
        return bounce(message, config, store);
    }

    // 2. Ignored: anything else automatic, our own mail, a redelivery.
    if let Some(value) = message.auto_submitted.as_deref()
        && value != "no"
    {
        return Ok(Outcome::Ignored(Ignore::AutoSubmitted(value.to_string())));
    }
    if let Some(value) = message.precedence.as_deref()
        && matches!(value, "bulk" | "junk" | "list")
    {
        return Ok(Outcome::Ignored(Ignore::Precedence(value.to_string())));
    }
    if message.return_path == ReturnPath::Empty {
        return Ok(Outcome::Ignored(Ignore::EmptyReturnPath));
    }
    if let Some(header) = &message.autoreply_header {
        return Ok(Outcome::Ignored(Ignore::AutoReplyHeader(header.clone())));
    }
    if let Some(report) = &message.report {
        return Ok(Outcome::Ignored(Ignore::OtherReport(
            report.report_type.clone(),
        )));
    }
    if message.has_helpdesk_ticket {
        return Ok(Outcome::Ignored(Ignore::OwnMail));
    }
    if let Some(id) = &message.message_id {
        if store.our_notification_by_message_id(id)?.is_some()
            || store.ticket_by_thread_id(id)?.is_some()
        {
            return Ok(Outcome::Ignored(Ignore::OwnMessageId));
        }
        if store.already_received(id)? {
            return Ok(Outcome::Ignored(Ignore::AlreadyReceived(id.clone())));
        }
    }

    // 3. Refused: no single sender, not authenticated, not an active user.
    let from = match &message.from {
        Ok(from) => from,
        Err(problem) => return Ok(Outcome::Refused(Refusal::Sender(problem.clone()))),
    };
    if let Some(trusted) = &config.trusted_authserv_id {
        let domain = message.sender_domain().unwrap_or_default();
        if !auth::is_authenticated(&message.authentication_results, trusted, &domain) {
            return Ok(Outcome::Refused(Refusal::NotAuthenticated));
        }
    }
    let Some(author) = store.active_user_by_email(from)? else {
        return Ok(Outcome::Refused(Refusal::UnknownSender(from.clone())));
    };
    let Some(message_id) = message.message_id.clone() else {
        return Ok(Outcome::Refused(Refusal::NoMessageId));
    };

    // 4. Comment: a ticket named by Message-ID, +N tag or subject.
    let found = match ticket_by_message_ids(message, store)? {
        Some(ticket) => Some((ticket, FoundBy::MessageId)),
        None => match address_tag(message, &config.address) {
            Some(ticket) if store.ticket_exists(ticket)? => Some((ticket, FoundBy::AddressTag)),
            Some(ticket) => return Ok(Outcome::Refused(Refusal::NoSuchTicket(ticket))),
            // A subject tag naming no ticket may be another system's: the
            // message falls through to a new ticket.
            None => match subject_tag(&message.subject) {
                Some(ticket) if store.ticket_exists(ticket)? => Some((ticket, FoundBy::Subject)),
                _ => None,
            },
        },
    };
    if let Some((ticket_id, found_by)) = found {
        return Ok(
            match text::comment_text(
                &message.subject,
                &message.body,
                message.attachments,
                message.body_truncated,
            ) {
                Some(text) => Outcome::Comment(Comment {
                    ticket_id,
                    author,
                    text,
                    found_by,
                    message_id,
                }),
                None => Outcome::Refused(Refusal::EmptyReply),
            },
        );
    }

    // 5. New ticket, when sent to the inbound address.
    if !addressed_to_us(message, &config.address) {
        return Ok(Outcome::Refused(Refusal::NotAddressed(
            config.address.clone(),
        )));
    }
    Ok(
        match text::description_text(
            &message.subject,
            &message.body,
            message.attachments,
            message.body_truncated,
        ) {
            Some(description) => Outcome::Ticket(NewTicket {
                author,
                description,
                message_id,
            }),
            None => Outcome::Refused(Refusal::EmptyMessage),
        },
    )
}

/// Rule 1: the notification a delivery report is about, found by the returned
/// message's Message-ID, else (no headers returned) by a Message-ID of ours in
/// the report's own `In-Reply-To`/`References` or a `+N` tag and the failed
/// address.
fn bounce<L: Lookup>(
    message: &Inbound,
    config: &InboundConfig,
    store: &L,
) -> Result<Outcome, L::Error> {
    let Some(report) = &message.report else {
        return Ok(Outcome::Ignored(Ignore::ReportNotOurs));
    };
    let failed = report
        .recipients
        .iter()
        .find(|r| r.action.as_deref() == Some("failed"));
    let notification = match &report.original_message_id {
        Some(id) => store.our_notification_by_message_id(id)?,
        None => {
            let mut found = None;
            for id in message
                .in_reply_to
                .iter()
                .chain(message.references.iter().rev())
            {
                if let Some(n) = store.our_notification_by_message_id(id)? {
                    found = Some(n);
                    break;
                }
            }
            match (found, address_tag(message, &config.address), failed) {
                (Some(n), _, _) => Some(n),
                (None, Some(ticket), Some(recipient)) => {
                    let address = recipient
                        .original_recipient
                        .as_deref()
                        .or(recipient.final_recipient.as_deref())
                        .unwrap_or_default();
                    store.our_notification_for_ticket_recipient(ticket, address)?
                }
                _ => None,
            }
        }
    };
    let Some(notification) = notification else {
        return Ok(Outcome::Ignored(Ignore::ReportNotOurs));
    };
    let matches_address = |r: &&DsnRecipient| {
        [&r.original_recipient, &r.final_recipient].iter().any(|a| {
            a.as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&notification.to_addr))
        })
    };
    let recipient = report
        .recipients
        .iter()
        .filter(|r| r.action.as_deref() == Some("failed"))
        .find(matches_address)
        .or(failed);
    let Some(recipient) = recipient else {
        let action = report
            .recipients
            .first()
            .and_then(|r| r.action.clone())
            .unwrap_or_else(|| "no recipient fields".to_string());
        return Ok(Outcome::Ignored(Ignore::ReportNotFailure(action)));
    };
    Ok(Outcome::Bounce(Bounce {
        permanent: recipient.is_permanent(),
        recipient: recipient.clone(),
        notification,
    }))
}

/// (a) The first Message-ID of ours in `In-Reply-To`, then `References` from
/// the newest: a thread root or a notification's own id.
fn ticket_by_message_ids<L: Lookup>(
    message: &Inbound,
    store: &L,
) -> Result<Option<TicketId>, L::Error> {
    for id in message
        .in_reply_to
        .iter()
        .chain(message.references.iter().rev())
    {
        if let Some(ticket) = store.ticket_by_thread_id(id)? {
            return Ok(Some(ticket));
        }
        if let Some(n) = store.our_notification_by_message_id(id)? {
            return Ok(Some(n.ticket_id));
        }
    }
    Ok(None)
}

/// Splits `local@domain` into lowercased parts.
fn split_address(address: &str) -> Option<(String, String)> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    Some((local.to_ascii_lowercase(), domain.to_ascii_lowercase()))
}

fn recipients(message: &Inbound) -> impl Iterator<Item = &String> {
    message
        .to
        .iter()
        .chain(message.cc.iter())
        .chain(message.delivered_to.iter())
}

/// (b) `help+N@example.org` for inbound `help@example.org`, in `To`, `Cc`,
/// `Delivered-To`, in that order.
pub fn address_tag(message: &Inbound, inbound: &str) -> Option<TicketId> {
    let (local, domain) = split_address(inbound)?;
    recipients(message).find_map(|addr| {
        let (their_local, their_domain) = split_address(addr)?;
        if their_domain != domain {
            return None;
        }
        let tag = their_local.strip_prefix(&local)?.strip_prefix('+')?;
        parse_ticket_number(tag).filter(|_| tag.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Sent to the inbound address, with or without a `+` tag.
fn addressed_to_us(message: &Inbound, inbound: &str) -> bool {
    let Some((local, domain)) = split_address(inbound) else {
        return false;
    };
    if !is_address(inbound.trim()) {
        return false;
    }
    recipients(message).any(|addr| {
        split_address(addr).is_some_and(|(their_local, their_domain)| {
            their_domain == domain
                && (their_local == local
                    || their_local
                        .strip_prefix(&local)
                        .is_some_and(|rest| rest.starts_with('+')))
        })
    })
}

/// (c) `[#N]` or `ticket #N` (any case) in the subject, the first one.
pub fn subject_tag(subject: &str) -> Option<TicketId> {
    let lower = subject.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digits_at = if lower[i..].starts_with("[#") {
            Some(i + 2)
        } else if lower[i..].starts_with("ticket #") {
            Some(i + 8)
        } else {
            None
        };
        if let Some(start) = digits_at {
            let len = bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let digits = &lower[start..start + len];
            let closed = !lower[i..].starts_with("[#") || bytes.get(start + len) == Some(&b']');
            if closed && let Some(n) = parse_ticket_number(digits) {
                return Some(n);
            }
        }
        i += lower[i..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// A positive ticket number of at most 18 digits.
fn parse_ticket_number(digits: &str) -> Option<TicketId> {
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0).map(TicketId)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use super::*;
    use crate::mail::{fixtures, parse::parse};

    /// A store as plain maps; every question is answered from them.
    #[derive(Default)]
    pub(crate) struct FakeStore {
        pub notifications: HashMap<String, NotificationRef>,
        pub threads: HashMap<String, TicketId>,
        pub tickets: Vec<TicketId>,
        pub users: HashMap<String, UserRef>,
        pub received: Vec<String>,
    }

    impl Lookup for FakeStore {
        type Error = Infallible;
        fn our_notification_by_message_id(
            &self,
            id: &str,
        ) -> Result<Option<NotificationRef>, Infallible> {
            Ok(self.notifications.get(id).cloned())
        }
        fn our_notification_for_ticket_recipient(
            &self,
            ticket: TicketId,
            address: &str,
        ) -> Result<Option<NotificationRef>, Infallible> {
            Ok(self
                .notifications
                .values()
                .find(|n| n.ticket_id == ticket && n.to_addr.eq_ignore_ascii_case(address))
                .cloned())
        }
        fn ticket_by_thread_id(&self, id: &str) -> Result<Option<TicketId>, Infallible> {
            Ok(self.threads.get(id).copied())
        }
        fn ticket_exists(&self, ticket: TicketId) -> Result<bool, Infallible> {
            Ok(self.tickets.contains(&ticket))
        }
        fn active_user_by_email(&self, address: &str) -> Result<Option<UserRef>, Infallible> {
            Ok(self.users.get(&address.to_ascii_lowercase()).cloned())
        }
        fn already_received(&self, id: &str) -> Result<bool, Infallible> {
            Ok(self.received.iter().any(|r| r == id))
        }
    }

    pub(crate) fn store() -> FakeStore {
        let mut s = FakeStore {
            tickets: vec![TicketId(7), TicketId(12), TicketId(13)],
            ..FakeStore::default()
        };
        s.threads
            .insert("<ticket-7.5f3a9c@help.example.org>".into(), TicketId(7));
        for (id, ticket, to) in [
            (
                "<9.4.00000000000000ab@help.example.org>",
                7,
                "dana@example.com",
            ),
            (
                "<12.3.00000000deadbeef@help.example.org>",
                12,
                "gone@example.net",
            ),
            (
                "<13.3.00000000deadbeef@help.example.org>",
                13,
                "nobody@example.net",
            ),
        ] {
            s.notifications.insert(
                id.into(),
                NotificationRef {
                    id: NotificationId(ticket * 10),
                    ticket_id: TicketId(ticket),
                    to_addr: to.into(),
                },
            );
        }
        for (i, addr) in ["dana@example.com", "sam.lee@example.com"]
            .iter()
            .enumerate()
        {
            s.users.insert(
                addr.to_string(),
                UserRef {
                    id: UserId(i as i64 + 1),
                    username: addr.split('@').next().unwrap().to_string(),
                },
            );
        }
        s
    }

    pub(crate) fn config() -> InboundConfig {
        InboundConfig {
            address: "help@example.org".into(),
            trusted_authserv_id: None,
        }
    }

    fn outcome(raw: &str) -> Outcome {
        outcome_with(raw, &config(), &store())
    }

    fn outcome_with(raw: &str, config: &InboundConfig, store: &FakeStore) -> Outcome {
        let message = parse(raw.as_bytes()).expect("a message");
        let Ok(outcome) = classify(&message, config, store);
        outcome
    }

    fn plain(headers: &str, body: &str) -> String {
        format!(
            "From: Dana <dana@example.com>\r\nTo: help@example.org\r\nMessage-ID: <m1@example.com>\r\n{headers}Subject: Hello\r\n\r\n{body}"
        )
    }

    #[test]
    fn a_thunderbird_reply_is_a_comment_found_by_message_id() {
        let Outcome::Comment(c) = outcome(fixtures::THUNDERBIRD_REPLY) else {
            panic!("not a comment");
        };
        assert_eq!(c.ticket_id, TicketId(7));
        assert_eq!(c.found_by, FoundBy::MessageId);
        assert_eq!(c.author.username, "dana");
        assert_eq!(
            c.text,
            "It is out now, thanks.\n\nThe toner was the problem."
        );
        assert_eq!(c.message_id, "<b7e1c0de-1@example.com>");
    }

    #[test]
    fn an_outlook_reply_is_a_comment_with_the_attachment_noted() {
        let Outcome::Comment(c) = outcome(fixtures::OUTLOOK_REPLY) else {
            panic!("not a comment");
        };
        assert_eq!(c.ticket_id, TicketId(7));
        assert_eq!(c.found_by, FoundBy::MessageId);
        assert_eq!(
            c.text,
            "Works for me now.\n\nSam\n\n[1 attachment was left out]"
        );
    }

    #[test]
    fn an_html_only_gmail_reply_is_a_comment_found_by_the_address_tag() {
        let Outcome::Comment(c) = outcome(fixtures::GMAIL_HTML_REPLY) else {
            panic!("not a comment");
        };
        assert_eq!(
            (c.ticket_id, c.found_by),
            (TicketId(7), FoundBy::AddressTag)
        );
        assert_eq!(c.text, "Thanks, that fixed it.");
    }

    #[test]
    fn postfix_and_exim_bounces_fail_their_notification() {
        let Outcome::Bounce(b) = outcome(fixtures::POSTFIX_BOUNCE) else {
            panic!("not a bounce");
        };
        assert_eq!(b.notification.id, NotificationId(120));
        assert_eq!(b.address(), "gone@example.net");
        assert!(b.permanent);
        assert_eq!(
            b.last_error(),
            "bounced: 5.1.1 smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table"
        );
        let bounce = Outcome::Bounce(b);
        assert_eq!(bounce.action().as_str(), "bounce");
        assert_eq!(bounce.ticket_id(), Some(TicketId(12)));

        let Outcome::Bounce(b) = outcome(fixtures::EXIM_BOUNCE) else {
            panic!("not a bounce");
        };
        assert_eq!(b.notification.ticket_id, TicketId(13));
        assert!(b.permanent);
    }

    #[test]
    fn a_bounce_about_other_mail_or_a_delay_is_ignored() {
        let mut s = store();
        s.notifications.clear();
        let o = outcome_with(fixtures::POSTFIX_BOUNCE, &config(), &s);
        assert_eq!(o, Outcome::Ignored(Ignore::ReportNotOurs));
        assert_eq!(
            o.reason().unwrap(),
            "a delivery report about mail helpdesk did not send"
        );
        let commented =
            fixtures::POSTFIX_BOUNCE.replace("Action: failed", "Action: FAILED (permanent)");
        assert!(matches!(outcome(&commented), Outcome::Bounce(_)));
        let delayed = fixtures::POSTFIX_BOUNCE
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1");
        assert_eq!(
            outcome(&delayed),
            Outcome::Ignored(Ignore::ReportNotFailure("delayed".into()))
        );
    }

    #[test]
    fn a_report_without_returned_headers_is_matched_by_tag_and_address() {
        let start = fixtures::POSTFIX_BOUNCE
            .find("--B3F0A2C1.1764500000/mx.example.org\nContent-Description: Undelivered Message Headers")
            .unwrap();
        let stripped = format!(
            "{}--B3F0A2C1.1764500000/mx.example.org--\n",
            &fixtures::POSTFIX_BOUNCE[..start]
        )
        .replace("To: help@example.org", "To: help+12@example.org");
        let Outcome::Bounce(b) = outcome(&stripped) else {
            panic!("not a bounce");
        };
        assert_eq!(b.notification.id, NotificationId(120));
    }

    #[test]
    fn automatic_mail_is_ignored_with_its_reason() {
        let o = outcome(fixtures::VACATION_REPLY);
        assert_eq!(
            o,
            Outcome::Ignored(Ignore::AutoSubmitted("auto-replied".into()))
        );
        assert_eq!(
            o.reason().unwrap(),
            "automatic mail (Auto-Submitted: auto-replied)"
        );
        assert_eq!(
            outcome(fixtures::MAILING_LIST),
            Outcome::Ignored(Ignore::Precedence("list".into()))
        );
        assert_eq!(
            outcome(&plain("Return-Path: <>\r\n", "hi")),
            Outcome::Ignored(Ignore::EmptyReturnPath)
        );
        assert!(matches!(
            outcome(&plain("Auto-Submitted: no\r\n", "hi")),
            Outcome::Ticket(_)
        ));
        assert_eq!(
            outcome(&plain("X-Autoreply: yes\r\n", "hi")),
            Outcome::Ignored(Ignore::AutoReplyHeader("X-Autoreply".into()))
        );
        let mdn = plain(
            "Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n",
            "--x\r\nContent-Type: text/plain\r\n\r\nread\r\n--x--\r\n",
        );
        assert_eq!(
            outcome(&mdn),
            Outcome::Ignored(Ignore::OtherReport("disposition-notification".into()))
        );
    }

    #[test]
    fn a_forged_helpdesk_header_from_a_real_user_is_ignored() {
        let raw = plain("X-Helpdesk-Ticket: 7\r\n", "Close ticket 7 please");
        assert_eq!(outcome(&raw), Outcome::Ignored(Ignore::OwnMail));
        // The header never names the ticket: without it the same mail is a new ticket.
        assert!(matches!(
            outcome(&plain("", "Close ticket 7 please")),
            Outcome::Ticket(_)
        ));
    }

    #[test]
    fn our_own_message_id_and_a_redelivery_are_ignored() {
        let own = plain("", "x").replace(
            "<m1@example.com>",
            "<9.4.00000000000000ab@help.example.org>",
        );
        assert_eq!(outcome(&own), Outcome::Ignored(Ignore::OwnMessageId));
        let mut s = store();
        s.received.push("<b7e1c0de-1@example.com>".into());
        let o = outcome_with(fixtures::THUNDERBIRD_REPLY, &config(), &s);
        assert_eq!(
            o,
            Outcome::Ignored(Ignore::AlreadyReceived("<b7e1c0de-1@example.com>".into()))
        );
        assert_eq!(
            o.reason().unwrap(),
            "already received (<b7e1c0de-1@example.com>)"
        );
    }

    #[test]
    fn senders_that_are_not_one_active_user_are_refused() {
        let two = plain("", "hi").replace(
            "Dana <dana@example.com>",
            "dana@example.com, eve@example.com",
        );
        assert_eq!(
            outcome(&two),
            Outcome::Refused(Refusal::Sender(FromProblem::Several(2)))
        );
        let crlf =
            plain("", "hi").replace("Dana <dana@example.com>", "dana@example.com\rBcc: x@y.z");
        assert_eq!(
            outcome(&crlf),
            Outcome::Refused(Refusal::Sender(FromProblem::LineBreak))
        );
        let stranger = plain("", "hi").replace("dana@example.com", "eve@example.net");
        let o = outcome(&stranger);
        assert_eq!(
            o,
            Outcome::Refused(Refusal::UnknownSender("eve@example.net".into()))
        );
        assert_eq!(
            o.reason().unwrap(),
            "no active user has the address `eve@example.net`"
        );
        // Case-insensitive: the Outlook fixture's From is Sam.Lee@Example.COM.
        assert!(matches!(
            outcome(fixtures::OUTLOOK_REPLY),
            Outcome::Comment(_)
        ));
    }

    #[test]
    fn with_a_trusted_server_only_its_first_header_counts() {
        let config = InboundConfig {
            trusted_authserv_id: Some("mx.example.org".into()),
            ..config()
        };
        let store = store();
        assert!(matches!(
            outcome_with(fixtures::THUNDERBIRD_REPLY, &config, &store),
            Outcome::Comment(_)
        ));
        let forged = plain(
            "Authentication-Results: mx.example.org; spf=softfail smtp.mailfrom=example.com; dmarc=fail header.from=example.com\r\n\
             Authentication-Results: mx.example.org; dmarc=pass header.from=example.com\r\n",
            "hi",
        );
        let o = outcome_with(&forged, &config, &store);
        assert_eq!(o, Outcome::Refused(Refusal::NotAuthenticated));
        assert_eq!(o.reason().unwrap(), "not authenticated");
        assert_eq!(
            outcome_with(&plain("", "hi"), &config, &store),
            Outcome::Refused(Refusal::NotAuthenticated)
        );
        let spf_only = plain(
            "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=dana@example.com\r\n",
            "hi",
        );
        assert!(matches!(
            outcome_with(&spf_only, &config, &store),
            Outcome::Ticket(_)
        ));
    }

    #[test]
    fn the_ticket_is_found_in_order_message_id_tag_subject() {
        let mut s = store();
        s.tickets.push(TicketId(8));
        s.tickets.push(TicketId(9));
        let all = plain("In-Reply-To: <ticket-7.5f3a9c@help.example.org>\r\n", "x")
            .replace("To: help@example.org", "To: help+8@example.org")
            .replace("Subject: Hello", "Subject: Re: [#9] Hello");
        let found = |raw: &str| match outcome_with(raw, &config(), &s) {
            Outcome::Comment(c) => Some((c.ticket_id, c.found_by)),
            _ => None,
        };
        assert_eq!(found(&all), Some((TicketId(7), FoundBy::MessageId)));
        let no_id = all.replace("In-Reply-To: <ticket-7.5f3a9c@help.example.org>\r\n", "");
        assert_eq!(found(&no_id), Some((TicketId(8), FoundBy::AddressTag)));
        let no_tag = no_id.replace("help+8@", "help@");
        assert_eq!(found(&no_tag), Some((TicketId(9), FoundBy::Subject)));
        let words = no_tag.replace("[#9] Hello", "About Ticket #9");
        assert_eq!(found(&words), Some((TicketId(9), FoundBy::Subject)));
        let cc = no_id.replace(
            "To: help+8@example.org",
            "To: someone@example.com\r\nCc: Help <HELP+8@Example.ORG>",
        );
        assert_eq!(found(&cc), Some((TicketId(8), FoundBy::AddressTag)));
        let delivered = no_tag.replace(
            "Subject: Re: [#9] Hello",
            "Delivered-To: help+8@example.org\r\nSubject: Hi",
        );
        assert_eq!(found(&delivered), Some((TicketId(8), FoundBy::AddressTag)));
    }

    #[test]
    fn a_missing_ticket_is_refused_by_tag_and_a_new_ticket_by_subject() {
        let tag = plain("", "x").replace("To: help@example.org", "To: help+99@example.org");
        let o = outcome(&tag);
        assert_eq!(o, Outcome::Refused(Refusal::NoSuchTicket(TicketId(99))));
        assert_eq!(o.reason().unwrap(), "ticket #99 does not exist");
        let subject = plain("", "x").replace("Subject: Hello", "Subject: [#99] Hello");
        assert!(matches!(outcome(&subject), Outcome::Ticket(_)));
    }

    #[test]
    fn a_reply_that_is_only_quote_is_refused_as_empty() {
        let raw = plain(
            "In-Reply-To: <ticket-7.5f3a9c@help.example.org>\r\n",
            "On Mon, Helpdesk wrote:\r\n> old\r\n",
        );
        let o = outcome(&raw);
        assert_eq!(o, Outcome::Refused(Refusal::EmptyReply));
        assert_eq!(o.reason().unwrap(), "empty reply");
    }

    #[test]
    fn a_new_ticket_needs_the_inbound_address_and_some_text() {
        let Outcome::Ticket(t) = outcome(&plain("", "The printer smokes.\r\n-- \r\nDana")) else {
            panic!("not a ticket");
        };
        assert_eq!(t.description, "Hello\n\nThe printer smokes.");
        assert_eq!(t.author.id, UserId(1));
        let elsewhere = plain("", "x").replace("To: help@example.org", "To: other@example.org");
        assert_eq!(
            outcome(&elsewhere),
            Outcome::Refused(Refusal::NotAddressed("help@example.org".into()))
        );
        let empty = plain("", "").replace("Subject: Hello", "Subject: ");
        assert_eq!(outcome(&empty), Outcome::Refused(Refusal::EmptyMessage));
        let no_id = plain("", "x").replace("Message-ID: <m1@example.com>\r\n", "");
        assert_eq!(outcome(&no_id), Outcome::Refused(Refusal::NoMessageId));
        assert_eq!(Outcome::Ticket(t).reason(), None);
        assert_eq!(
            Outcome::Refused(Refusal::TooLarge(32 << 20))
                .reason()
                .unwrap(),
            "larger than the limit of 33554432 bytes"
        );
    }

    /// Every hostile shape from the issue ends in a defined outcome.
    #[test]
    fn hostile_messages_each_get_a_defined_outcome() {
        let reply = "In-Reply-To: <ticket-7.5f3a9c@help.example.org>\r\n";

        // 25 MB: a base64 attachment; the text is kept, the file counted.
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw\r\n";
        let big = plain(
            "Content-Type: multipart/mixed; boundary=b\r\n",
            &format!(
                "--b\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n--b\r\n\
                 Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 {}--b--\r\n",
                line.repeat(25 * (1 << 20) / line.len())
            ),
        );
        let Outcome::Ticket(t) = outcome(&big) else {
            panic!("25 MB message: not a ticket");
        };
        assert_eq!(
            t.description,
            "Hello\n\nLog attached.\n\n[1 attachment was left out]"
        );

        // 10,000 MIME parts.
        let mut parts = String::from("--b\r\nContent-Type: text/plain\r\n\r\nMany files.\r\n");
        for i in 0..10_000 {
            parts.push_str(&format!(
                "--b\r\nContent-Type: image/png; name=p{i}.png\r\n\r\nx\r\n"
            ));
        }
        parts.push_str("--b--\r\n");
        let many = plain(
            &format!("{reply}Content-Type: multipart/mixed; boundary=b\r\n"),
            &parts,
        );
        let Outcome::Comment(c) = outcome(&many) else {
            panic!("10,000 parts: not a comment");
        };
        assert_eq!(c.text, "Many files.\n\n[10000 attachments were left out]");

        // A malformed boundary: nothing readable, refused as empty.
        let malformed = plain(
            &format!("{reply}Content-Type: multipart/mixed; boundary=\"open\r\n"),
            "--open\r\nContent-Type: text/plain\r\n\r\ntext\r\n",
        );
        assert_eq!(outcome(&malformed), Outcome::Refused(Refusal::EmptyReply));

        // A 1 MB header: the subject is cut to one line's length.
        let huge = plain(&format!("X-Filler: {}\r\n", "y".repeat(1 << 20)), "Body.").replace(
            "Subject: Hello",
            &format!("Subject: {}", "s".repeat(1 << 20)),
        );
        let Outcome::Ticket(t) = outcome(&huge) else {
            panic!("1 MB header: not a ticket");
        };
        assert_eq!(t.description, format!("{}\n\nBody.", "s".repeat(998)));

        // Invalid UTF-8 and mixed charsets: decoded, bad bytes replaced.
        let mut mixed = plain(
            &format!("{reply}Content-Type: text/plain; charset=iso-8859-1\r\n"),
            "",
        )
        .into_bytes();
        mixed.extend_from_slice(b"Gr\xfc\xdfe \xff\r\n");
        let message = parse(&mixed).unwrap();
        let Ok(Outcome::Comment(c)) = classify(&message, &config(), &store()) else {
            panic!("mixed charsets: not a comment");
        };
        assert_eq!(c.text, "Grüße ÿ");
        let mut broken = plain(reply, "").into_bytes();
        broken.extend_from_slice(b"caf\xc3\xa9 \xff\xfe ok");
        let message = parse(&broken).unwrap();
        let Ok(Outcome::Comment(c)) = classify(&message, &config(), &store()) else {
            panic!("invalid UTF-8: not a comment");
        };
        assert_eq!(c.text, "café \u{fffd}\u{fffd} ok");

        // A reply quoting 500 levels.
        let mut deep = String::from("Top reply.\r\n\r\n");
        for level in (1..=500).rev() {
            deep.push_str(&format!("{} level {level}\r\n", ">".repeat(level)));
        }
        let Outcome::Comment(c) = outcome(&plain(reply, &deep)) else {
            panic!("500 levels: not a comment");
        };
        assert_eq!(c.text, "Top reply.");

        // A From with CR/LF or two addresses.
        let crlf = plain(reply, "x").replace(
            "From: Dana <dana@example.com>",
            "From: =?utf-8?q?Dana=0D=0ABcc=3A_all=40example=2Ecom?= <dana@example.com>",
        );
        assert_eq!(
            outcome(&crlf),
            Outcome::Refused(Refusal::Sender(FromProblem::LineBreak))
        );
        let two = plain(reply, "x").replace(
            "Dana <dana@example.com>",
            "dana@example.com, sam.lee@example.com",
        );
        assert_eq!(
            outcome(&two),
            Outcome::Refused(Refusal::Sender(FromProblem::Several(2)))
        );

        // A forged X-Helpdesk-Ticket from a real user.
        let forged = plain(&format!("{reply}X-Helpdesk-Ticket: 12\r\n"), "x");
        assert_eq!(outcome(&forged), Outcome::Ignored(Ignore::OwnMail));

        // Not a message at all.
        assert!(parse(b"\x00\x9f\x92\x96 binary").is_err());
    }

    #[test]
    fn tags_are_read_strictly() {
        assert_eq!(subject_tag("Re: [#42] x"), Some(TicketId(42)));
        assert_eq!(subject_tag("TICKET #5 done"), Some(TicketId(5)));
        assert_eq!(subject_tag("[#42 x"), None);
        assert_eq!(subject_tag("[#] [#0] [#99999999999999999999]"), None);
        assert_eq!(subject_tag("é [#3]"), Some(TicketId(3)));
        let m = parse(b"From: a@b.c\r\nTo: help+12x@example.org, help+@example.org, helpdesk+4@example.org\r\n\r\nx").unwrap();
        assert_eq!(address_tag(&m, "help@example.org"), None);
    }

    #[test]
    fn store_errors_pass_through() {
        struct Down;
        impl Lookup for Down {
            type Error = &'static str;
            fn our_notification_by_message_id(
                &self,
                _: &str,
            ) -> Result<Option<NotificationRef>, &'static str> {
                Err("busy")
            }
            fn our_notification_for_ticket_recipient(
                &self,
                _: TicketId,
                _: &str,
            ) -> Result<Option<NotificationRef>, &'static str> {
                Err("busy")
            }
            fn ticket_by_thread_id(&self, _: &str) -> Result<Option<TicketId>, &'static str> {
                Err("busy")
            }
            fn ticket_exists(&self, _: TicketId) -> Result<bool, &'static str> {
                Err("busy")
            }
            fn active_user_by_email(&self, _: &str) -> Result<Option<UserRef>, &'static str> {
                Err("busy")
            }
            fn already_received(&self, _: &str) -> Result<bool, &'static str> {
                Err("busy")
            }
        }
        let m = parse(fixtures::THUNDERBIRD_REPLY.as_bytes()).unwrap();
        assert_eq!(classify(&m, &config(), &Down), Err("busy"));
    }

    proptest::proptest! {
        #![proptest_config(crate::mail::proptest_config())]

        /// The same message, configuration and store always give the same
        /// outcome, and classification never panics on damaged input.
        #[test]
        fn classification_is_deterministic(
            index in 0usize..16,
            edits in proptest::collection::vec(proptest::prelude::any::<(proptest::sample::Index, u8)>(), 0..24),
            keep in proptest::prelude::any::<proptest::sample::Index>(),
            trusted in proptest::prelude::any::<bool>(),
        ) {
            let bytes = crate::mail::parse::tests::damaged(index, &edits, keep);
            let config = InboundConfig {
                trusted_authserv_id: trusted.then(|| "mx.example.org".to_string()),
                ..config()
            };
            let store = store();
            if let Ok(message) = parse(&bytes) {
                let Ok(first) = classify(&message, &config, &store);
                let again = parse(&bytes).expect("parsed once, parses again");
                let Ok(second) = classify(&again, &config, &store);
                proptest::prop_assert_eq!(first, second);
            }
        }

        #[test]
        fn classification_never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)
        ) {
            if let Ok(message) = parse(&bytes) {
                let Ok(_) = classify(&message, &config(), &store());
            }
        }
    }
}
