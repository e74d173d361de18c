//! Building an email: headers (From, To, Subject, Date, a stable Message-ID,
//! `Auto-Submitted`, `X-Helpdesk-Ticket`) and a `multipart/alternative` body
//! with a text and an HTML part. The bytes built here are what a transport
//! sends; nothing here talks to a server.

use std::str::FromStr;

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use crate::model::{EventId, TicketId, UserId};
use crate::notify::content::EmailContent;

/// A message ready for a transport.
pub struct Outgoing {
    /// Tells messages apart for a transport that prepares the next one early.
    pub key: i64,
    pub envelope: Envelope,
    pub raw: Vec<u8>,
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so auto-responders stay quiet.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// `X-Helpdesk-Ticket: <id>`, so mail can be filtered by ticket.
#[derive(Clone)]
struct TicketHeader(TicketId);

impl Header for TicketHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Helpdesk-Ticket")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(TicketHeader(TicketId(s.trim().parse()?)))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_string())
    }
}

/// What varies per message.
pub struct Addressing<'a> {
    /// The notification's ID (0 for a test email).
    pub key: i64,
    pub from: &'a Mailbox,
    pub to: &'a str,
    pub message_id: Option<&'a str>,
    pub ticket_id: Option<TicketId>,
}

/// An email's subject and MIME body, encoded once and shared by every
/// recipient of the same event (encoding is most of the cost of a message).
#[derive(Clone)]
pub struct Prepared {
    subject: String,
    body: MultiPart,
    /// The ticket's thread root, for `In-Reply-To` and `References`.
    thread_root: Option<String>,
    /// `Reply-To`: the inbound address tagged with the ticket.
    reply_to: Option<Mailbox>,
}

impl Prepared {
    pub fn new(content: &EmailContent) -> Prepared {
        Prepared {
            subject: content.subject.clone(),
            body: MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(wire_body(plain_lines(&content.text))),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(wire_body(plain_lines(&content.html))),
                ),
            thread_root: None,
            reply_to: None,
        }
    }

    /// The same email as part of its ticket's conversation (SPEC §6): it
    /// refers to the thread root, and replies go to `reply_to`.
    pub fn threaded(mut self, thread_root: Option<String>, reply_to: Option<Mailbox>) -> Prepared {
        self.thread_root = thread_root;
        self.reply_to = reply_to;
        self
    }
}

/// The thread root of ticket `ticket_id`: a Message-ID minted once per
/// ticket and stored with it, never sent as a message itself.
pub fn mint_thread_root(ticket_id: TicketId, site_domain: &str) -> String {
    format!(
        "<ticket-{ticket_id}.{:016x}@{}>",
        fastrand::u64(..),
        host_of(site_domain)
    )
}

/// `Reply-To` for ticket `ticket_id`: `local+N@domain` of the inbound
/// address, named as `default_from_email` names the help desk. None when
/// inbound mail is not set up.
pub fn reply_to(config: &crate::config::Config, ticket_id: TicketId) -> Option<Mailbox> {
    let address = config.email.inbound.reply_address(ticket_id)?;
    let address = Address::from_str(&address).ok()?;
    let name = config.from.name.clone();
    Some(Mailbox::new(name, address))
}

/// Line breaks as `\n` only: a CR that is not part of CRLF must never reach
/// the wire (RFC 5321 forbids it, and `\r.\r\n` is how SMTP smuggling starts).
/// lettre writes each `\n` as CRLF.
fn plain_lines(text: &str) -> String {
    // Rendered templates seldom hold a CR: then the text is kept as it is
    // (two replacing passes cost a digest 5 % of its flush).
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The longest line SMTP carries, without its CRLF (RFC 5321 §4.5.3.1.6,
/// RFC 5322 §2.1.1).
const MAX_LINE: usize = 998;

/// A body part as it goes on the wire, from text with `\n` line breaks.
/// Text that is ASCII, holds no NUL and whose lines fit `MAX_LINE` goes as
/// `7bit`, as it is, only with CRLF line breaks: the rendered templates
/// nearly always are, and it spares every recipient's copy the cost of
/// quoted-printable (most of the flush of a digest, which is rendered per
/// recipient). A NUL (which SMTP may not carry, and lettre would send in a
/// short ASCII line) makes it quoted-printable; anything else is left to
/// lettre, which picks quoted-printable or base64.
fn wire_body(text: String) -> Body {
    // CRLF line breaks first, in one pass (lettre inserts each CR by moving
    // the rest of the text); lettre leaves line breaks that are CRLF alone.
    let mut wire = String::with_capacity(text.len() + text.len() / 32 + 2);
    let mut fits = true;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
        fits &= end - start <= MAX_LINE;
        wire.push_str(&text[start..end]);
        wire.push_str("\r\n");
        start = end + 1;
    }
    fits &= text.len() - start <= MAX_LINE;
    wire.push_str(&text[start..]);
    if memchr::memchr(0, wire.as_bytes()).is_some() {
        return Body::new_with_encoding(wire, ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(Body::new);
    }
    if fits && wire.is_ascii() {
        return Body::dangerous_pre_encoded(wire.into_bytes(), ContentTransferEncoding::SevenBit);
    }
    // Chosen on the text as written, as lettre would (its CRs would count
    // against quoted-printable and tip borderline text into base64).
    use email_encoding::body::Encoding;
    let encoding = match Encoding::choose(text.as_str(), false) {
        Encoding::Base64 => ContentTransferEncoding::Base64,
        _ => ContentTransferEncoding::QuotedPrintable,
    };
    Body::new_with_encoding(wire, encoding).unwrap_or_else(Body::new)
}

/// The Message-ID of the email to `user_id` about `event_id`: minted once,
/// when the notification is queued, and kept across resends, so a resend is
/// recognisable. `nonce` tells apart databases that reuse IDs.
pub fn mint_message_id(
    event_id: EventId,
    user_id: UserId,
    nonce: u64,
    site_domain: &str,
) -> String {
    MessageIds::new(event_id, nonce, site_domain).mint(user_id)
}

/// `mint_message_id` for the many recipients of one event: all but the
/// user's number is written once (a fan-out to 1,038 recipients formatted
/// the rest again for each).
pub struct MessageIds {
    head: String,
    tail: String,
}

impl MessageIds {
    pub fn new(event_id: EventId, nonce: u64, site_domain: &str) -> MessageIds {
        MessageIds {
            head: format!("<{event_id}."),
            tail: format!(".{nonce:016x}@{}>", host_of(site_domain)),
        }
    }

    pub fn mint(&self, user_id: UserId) -> String {
        let user = user_id.get().to_string();
        [self.head.as_str(), &user, &self.tail].concat()
    }
}

/// The event and user a Message-ID of `mint_message_id`'s form names, or
/// None for any other form. The database finds an email's notification by
/// these two (its unique key) and then compares the whole Message-ID: no
/// index on Message-IDs, which cost every queued email 50 bytes in it.
pub fn minted_by(message_id: &str) -> Option<(EventId, UserId)> {
    let local = message_id.strip_prefix('<')?.split_once('@')?.0;
    let mut parts = local.split('.');
    let (event, user, nonce) = (parts.next()?, parts.next()?, parts.next()?);
    // Digits only: `parse` alone would take a sign (an empty part fails it).
    let number = |text: &str| {
        Some(text)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok())
    };
    let hex = nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
    match (number(event), number(user), hex, parts.next()) {
        (Some(event), Some(user), true, None) => Some((EventId(event), UserId(user))),
        _ => None,
    }
}

/// A Message-ID for a message sent once, outside the queue (`notify test`).
pub fn one_off_message_id(site_domain: &str) -> String {
    format!(
        "<test.{:016x}.{:016x}@{}>",
        crate::clock::now_ms(),
        fastrand::u64(..),
        host_of(site_domain)
    )
}

/// The host of `site.domain`, without a port: a Message-ID's right-hand
/// side is a domain (RFC 5322), while links keep the port.
fn host_of(domain: &str) -> &str {
    if domain.starts_with('[') {
        return domain.find(']').map_or(domain, |end| &domain[..=end]);
    }
    domain.split(':').next().unwrap_or(domain)
}

/// Builds the message. Fails only on an address that cannot be parsed.
pub fn build(addressing: &Addressing<'_>, prepared: &Prepared) -> Result<Outgoing> {
    let to = Address::from_str(addressing.to)
        .with_context(|| format!("invalid recipient address `{}`", addressing.to))?;
    // The envelope given, so that lettre does not parse it back out of the headers.
    let envelope = Envelope::new(Some(addressing.from.email.clone()), vec![to.clone()])
        .context("could not build the envelope")?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(addressing.from.clone())
        .to(Mailbox::new(None, to))
        .subject(prepared.subject.as_str())
        .date_now()
        .header(AutoSubmitted);
    if let Some(id) = addressing.message_id {
        builder = builder.message_id(Some(id.to_string()));
    }
    if let Some(ticket) = addressing.ticket_id {
        builder = builder.header(TicketHeader(ticket));
    }
    if let Some(root) = &prepared.thread_root {
        builder = builder.in_reply_to(root.clone()).references(root.clone());
    }
    if let Some(reply_to) = &prepared.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let message = builder
        .multipart(prepared.body.clone())
        .context("could not build the message")?;
    // What lettre would have parsed for the envelope: a recipient whose
    // header it cannot read back is one it cannot send to.
    if message
        .headers()
        .get::<lettre::message::header::To>()
        .is_none()
    {
        anyhow::bail!("invalid recipient address `{}`", addressing.to);
    }
    Ok(Outgoing {
        key: addressing.key,
        envelope: message.envelope().clone(),
        raw: message.formatted(),
    })
}

/// `notify test`'s email to `to` (already redirected as the configuration
/// says), with a Message-ID of its own.
pub fn test_message(config: &crate::config::Config, to: &str) -> Result<Outgoing> {
    let renderer = crate::render::Renderer::new(config.templates_dir.as_deref())?;
    let content = crate::notify::content::test_email(&renderer, &config.site, to)?;
    let message_id = one_off_message_id(&config.site.domain);
    build(
        &Addressing {
            key: 0,
            from: &config.from,
            to,
            message_id: Some(&message_id),
            ticket_id: None,
        },
        &Prepared::new(&content),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_name_the_host_without_its_port() {
        assert_eq!(
            mint_message_id(EventId(3), UserId(4), 255, "help.example.org:8443"),
            "<3.4.00000000000000ff@help.example.org>"
        );
        assert_eq!(host_of("[::1]:8443"), "[::1]");
        assert_eq!(host_of("example.com"), "example.com");
        assert!(one_off_message_id("example.com:80").ends_with("@example.com>"));
    }

    #[test]
    fn a_minted_message_id_names_its_event_and_user_and_no_other_form_does() {
        let minted = mint_message_id(EventId(12), UserId(345), u64::MAX, "help.example.org");
        assert_eq!(minted_by(&minted), Some((EventId(12), UserId(345))));
        for other in [
            "<12.345@help.example.org>",
            "<12.345.ffffffffffffffff.1@help.example.org>",
            "<12.345.fffffffffffffff@help.example.org>",
            "<12.-345.ffffffffffffffff@help.example.org>",
            "<+12.345.ffffffffffffffff@help.example.org>",
            "<.345.ffffffffffffffff@help.example.org>",
            "<99999999999999999999.345.ffffffffffffffff@help.example.org>",
            "12.345.ffffffffffffffff@help.example.org",
            "<12.345.ffffffffffffffff>",
            &one_off_message_id("help.example.org"),
            "<CAF=abc.def@mail.example.com>",
            "<١٢.345.ffffffffffffffff@help.example.org>",
            "<12.99999999999999999999.ffffffffffffffff@help.example.org>",
            "<12.345.ffffffffffffffff",
        ] {
            assert_eq!(minted_by(other), None, "{other}");
        }
    }

    #[test]
    fn a_body_is_7bit_with_crlf_only_while_it_is_ascii_without_nul_and_its_lines_fit() {
        let body = wire_body(format!("a\n{}\n\nend", "b".repeat(MAX_LINE)));
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(
            body.into_vec(),
            format!("a\r\n{}\r\n\r\nend", "b".repeat(MAX_LINE)).into_bytes()
        );
        for refused in [
            format!("a\n{}", "b".repeat(MAX_LINE + 1)),
            "b".repeat(MAX_LINE + 1),
            "caf\u{e9}".to_string(),
            "a\0b".to_string(),
        ] {
            let body = wire_body(refused.clone());
            assert_ne!(
                body.encoding(),
                ContentTransferEncoding::SevenBit,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn an_encoded_body_is_what_lettre_would_make_of_the_text_as_written() {
        // 80-byte lines, about a third of their bytes not ASCII: counting
        // the CRs of CRLF would tip these into base64.
        let line = format!("{}{}", "ab".repeat(27), "é".repeat(13));
        let samples = [
            format!("{line}\n{line}\n{line}\n"),
            "café\n".repeat(40),
            format!("{}\nend", "x".repeat(1200)),
            "ünïcödé ".repeat(200),
        ];
        for text in samples {
            let ours = wire_body(text.clone());
            let lettres = Body::new(text.clone());
            assert_eq!(ours.encoding(), lettres.encoding(), "{text:?}");
            assert_eq!(ours.into_vec(), lettres.into_vec(), "{text:?}");
        }
    }

    #[test]
    fn headers_and_parts_are_present() {
        let content = EmailContent {
            subject: "Hello".into(),
            html: "<p>hi</p>".into(),
            text: "hi".into(),
        };
        let out = build(
            &Addressing {
                key: 1,
                from: &"Helpdesk <help@example.org>".parse().unwrap(),
                to: "dev@example.org",
                message_id: Some("<1.2.3@example.com>"),
                ticket_id: Some(TicketId(7)),
            },
            &Prepared::new(&content),
        )
        .unwrap();
        let raw = String::from_utf8(out.raw).unwrap();
        for needle in [
            "Auto-Submitted: auto-generated",
            "X-Helpdesk-Ticket: 7",
            "Message-ID: <1.2.3@example.com>",
            "Subject: Hello",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "Date: ",
        ] {
            assert!(raw.contains(needle), "missing {needle:?} in\n{raw}");
        }
        assert_eq!(out.envelope.to()[0].to_string(), "dev@example.org");
    }
}
