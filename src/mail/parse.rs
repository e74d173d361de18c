//! Reading one RFC 5322 message into an [`Inbound`]: the header fields that
//! classification needs, the body as text, the number of attachments, and for
//! a delivery status report (RFC 3464) its per-recipient fields and the
//! returned message's Message-ID. `mail-parser` does the MIME work; this module
//! picks out fields, bounds them, and says when the input is no message at all
//! ([`NotAMessage`], exit status 65 for the command).
//!
//! The input is a byte slice the caller has already capped (the command reads at
//! most its configured limit and refuses more). Every list and text kept here
//! is bounded again, so a hostile message costs at most the parser's own pass
//! over it plus a fixed amount: the body kept is at most [`MAX_BODY_BYTES`],
//! HTML converted is at most [`MAX_HTML_BYTES`], ids at most [`MAX_IDS`].
//! Deciding what the message becomes is left to `classify`, the comment text
//! to `text`.

use std::borrow::Cow;
use std::fmt;

use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// A sensible cap for the command to read a message up to (32 MiB): a larger
/// one is refused (`Refusal::TooLarge`) without being parsed whole.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 << 20;
/// The most body text kept, in bytes; the rest is left out and
/// [`Inbound::body_truncated`] says so.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most HTML handed to the HTML-to-text conversion, in bytes; a larger HTML
/// body is cut there first. Its DOM costs up to about 170 bytes per byte of
/// tag soup (measured: 24 MB at peak for 128 KiB of `<div>`s), and the reply
/// is at the top: what a cut drops is nearly always quoted history.
pub const MAX_HTML_BYTES: usize = 128 << 10;
/// The most Message-IDs kept from `In-Reply-To` and from `References` each (the
/// first and last halves of a longer list: the thread root and the parent).
pub const MAX_IDS: usize = 100;
/// The most recipient addresses kept from `To`, `Cc` and `Delivered-To` each.
pub const MAX_ADDRESSES: usize = 100;
/// The most per-recipient blocks read from a delivery status report.
pub const MAX_DSN_RECIPIENTS: usize = 100;
/// The most characters kept of one short text field (subject, a header value,
/// a diagnostic); RFC 5322 lines are at most 998 characters.
pub const MAX_FIELD_CHARS: usize = 998;
/// The most `Authentication-Results` headers kept (the topmost ones, written
/// by the servers nearest to us).
pub const MAX_AUTH_RESULTS: usize = 20;

/// The input is not a mail message at all (the command exits 65, `EX_DATAERR`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAMessage {
    #[error("the input is empty")]
    Empty,
    #[error("the input has no mail header (no From, To, Subject, Date, Message-ID or Received)")]
    NoHeader,
}

/// Why the `From` field does not name exactly one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromProblem {
    /// No `From` field, or one with no address in it.
    Missing,
    /// More than one address (in one field, a group, or several fields).
    Several(usize),
    /// A carriage return or line feed inside the field (beyond folding) or
    /// inside the decoded name or address.
    LineBreak,
    /// Something that is not `local@domain`.
    Invalid(String),
}

impl fmt::Display for FromProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromProblem::Missing => f.write_str("the message has no From address"),
            FromProblem::Several(n) => write!(f, "From names {n} addresses, not one"),
            FromProblem::LineBreak => f.write_str("From contains a line break"),
            FromProblem::Invalid(text) => write!(f, "From `{text}` is not an email address"),
        }
    }
}

/// The `Return-Path` the delivering server wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnPath {
    /// No `Return-Path` field (the mail server's pipe did not add one).
    Absent,
    /// `Return-Path: <>`: the null sender of bounces and other automatic mail.
    Empty,
    /// An address.
    Address(String),
}

/// One per-recipient block of a delivery status report (RFC 3464 §2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient`, the address only (`rfc822;` removed).
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, the address only.
    pub original_recipient: Option<String>,
    /// `Action`, lowercased: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: Option<String>,
    /// `Status`, such as `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, unfolded (`smtp; 550 5.1.1 …`).
    pub diagnostic: Option<String>,
}

impl DsnRecipient {
    /// A permanent failure: a `5.x.x` status (RFC 3463).
    pub fn is_permanent(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s.starts_with('5'))
    }
}

/// A `multipart/report` (RFC 6522).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The `report-type` parameter, lowercased (`delivery-status`,
    /// `disposition-notification`, …).
    pub report_type: String,
    /// For a delivery status report, its per-recipient blocks in order.
    pub recipients: Vec<DsnRecipient>,
    /// The Message-ID of the returned message (`message/rfc822` or
    /// `text/rfc822-headers` part), in angle brackets.
    pub original_message_id: Option<String>,
}

impl Report {
    pub fn is_delivery_status(&self) -> bool {
        self.report_type == "delivery-status" || self.report_type == "global-delivery-status"
    }
}

/// One inbound message, as classification and the comment text need it.
///
/// Message-IDs are kept in angle brackets (`<id@host>`), the form helpdesk
/// stores its own in; addresses as written (compare them case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The one sender address, or why there is not exactly one.
    pub from: Result<String, FromProblem>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub delivered_to: Vec<String>,
    /// Decoded, on one line, at most [`MAX_FIELD_CHARS`] characters.
    pub subject: String,
    /// `Auto-Submitted`'s value, lowercased, without parameters.
    pub auto_submitted: Option<String>,
    /// `Precedence`'s value, lowercased.
    pub precedence: Option<String>,
    pub return_path: ReturnPath,
    /// The message carries `X-Helpdesk-Ticket` (helpdesk's own mail).
    pub has_helpdesk_ticket: bool,
    /// The name of a non-standard auto-reply marker (`X-Autoreply`,
    /// `X-Autorespond`), if present.
    pub autoreply_header: Option<String>,
    /// `Authentication-Results` values, topmost first, unfolded.
    pub authentication_results: Vec<String>,
    /// The text body: the `text/plain` part(s), else the HTML part as text.
    pub body: String,
    /// The body was longer than kept ([`MAX_BODY_BYTES`] / [`MAX_HTML_BYTES`]).
    pub body_truncated: bool,
    /// The body was converted from HTML.
    pub body_from_html: bool,
    /// Parts that are not the body: files, images, nested messages.
    pub attachments: usize,
    /// Present when the message is a `multipart/report`.
    pub report: Option<Report>,
}

impl Inbound {
    /// The domain of the sender address, lowercased.
    pub fn sender_domain(&self) -> Option<String> {
        let from = self.from.as_ref().ok()?;
        from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
    }
}

/// Reads one message. Never panics; `Err` only when the input is no mail
/// message at all.
pub fn parse(raw: &[u8]) -> Result<Inbound, NotAMessage> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(NotAMessage::Empty);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(NotAMessage::NoHeader)?;
    let headers = message.root_part().headers();
    let is_mail = headers.iter().any(|h| {
        matches!(
            h.name,
            HeaderName::From
                | HeaderName::Sender
                | HeaderName::To
                | HeaderName::Subject
                | HeaderName::Date
                | HeaderName::MessageId
                | HeaderName::Received
                | HeaderName::ReturnPath
        ) || h.name.as_str().eq_ignore_ascii_case("Delivered-To")
    });
    if !is_mail {
        return Err(NotAMessage::NoHeader);
    }

    let mut inbound = Inbound {
        message_id: message.message_id().and_then(bracketed),
        in_reply_to: bounded_ids(ids(message.in_reply_to())),
        references: bounded_ids(ids(message.references())),
        from: sender(&message),
        to: addresses(message.header_values(HeaderName::To)),
        cc: addresses(message.header_values(HeaderName::Cc)),
        delivered_to: Vec::new(),
        subject: one_line(message.subject().unwrap_or_default()),
        auto_submitted: None,
        precedence: None,
        return_path: ReturnPath::Absent,
        has_helpdesk_ticket: false,
        autoreply_header: None,
        authentication_results: Vec::new(),
        body: String::new(),
        body_truncated: false,
        body_from_html: false,
        attachments: message.attachment_count(),
        report: report(&message),
    };

    let mut seen_return_path = false;
    for (name, value) in raw_headers(&message) {
        let value = value.as_ref();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("Delivered-To") {
            if inbound.delivered_to.len() < MAX_ADDRESSES {
                let addr = unfold(value);
                let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
                if !addr.is_empty() {
                    inbound.delivered_to.push(addr.to_string());
                }
            }
        } else if is("Auto-Submitted") && inbound.auto_submitted.is_none() {
            inbound.auto_submitted = Some(first_token(value));
        } else if is("Precedence") && inbound.precedence.is_none() {
            inbound.precedence = Some(first_token(value));
        } else if is("Return-Path") && !seen_return_path {
            // The topmost one: the delivering server writes it last, on top.
            seen_return_path = true;
            inbound.return_path = return_path(value);
        } else if is("X-Helpdesk-Ticket") {
            inbound.has_helpdesk_ticket = true;
        } else if is("X-Autoreply") || is("X-Autorespond") {
            inbound
                .autoreply_header
                .get_or_insert_with(|| name.to_string());
        } else if is("Authentication-Results")
            && inbound.authentication_results.len() < MAX_AUTH_RESULTS
        {
            inbound
                .authentication_results
                .push(truncate_chars(&unfold(value), 4 * MAX_FIELD_CHARS));
        }
    }

    let (body, truncated, from_html) = body_text(&message);
    inbound.body = body;
    inbound.body_truncated = truncated;
    inbound.body_from_html = from_html;
    Ok(inbound)
}

/// The top-level header fields as name and raw value, in order. Unlike
/// mail-parser's `headers_raw`, a value with invalid UTF-8 is kept (lossily
/// decoded), not skipped: skipping our own server's `Authentication-Results`
/// would let a forged one below it count as the first.
fn raw_headers<'a>(message: &'a Message<'_>) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> {
    let raw = message.raw_message.as_ref();
    message.root_part().headers().iter().map(move |header| {
        let value = raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        (header.name.as_str(), String::from_utf8_lossy(value))
    })
}

/// `<id>` for a Message-ID as mail-parser gives it (without brackets); `None`
/// for an empty or over-long one.
fn bracketed(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    if id.is_empty() || id.len() > MAX_FIELD_CHARS || id.chars().any(char::is_control) {
        return None;
    }
    Some(format!("<{id}>"))
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => bracketed(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| bracketed(id)).collect(),
        _ => Vec::new(),
    }
}

/// Keeps the first and last halves of a long id list: the thread root is
/// first in `References`, the parent last.
fn bounded_ids(mut ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_IDS {
        let tail = ids.split_off(ids.len() - MAX_IDS / 2);
        ids.truncate(MAX_IDS / 2);
        ids.extend(tail);
    }
    ids
}

/// Exactly one sender address, checked for line breaks and shape.
fn sender(message: &Message<'_>) -> Result<String, FromProblem> {
    let raw = message.raw_message.as_ref();
    let mut found: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    let mut fields = 0;
    for header in message.root_part().headers() {
        if header.name != HeaderName::From {
            continue;
        }
        fields += 1;
        let value = raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        if has_line_break(value) {
            return Err(FromProblem::LineBreak);
        }
        match &header.value {
            HeaderValue::Address(Address::List(list)) => {
                found.extend(
                    list.iter()
                        .map(|a| (a.name.as_deref(), a.address.as_deref())),
                );
            }
            HeaderValue::Address(Address::Group(groups)) => {
                for group in groups {
                    found.extend(
                        group
                            .addresses
                            .iter()
                            .map(|a| (a.name.as_deref(), a.address.as_deref())),
                    );
                }
            }
            _ => {}
        }
    }
    if fields > 1 && found.len() < fields {
        return Err(FromProblem::Several(fields));
    }
    match found.as_slice() {
        [] => Err(FromProblem::Missing),
        [(name, address)] => {
            if name.is_some_and(|n| n.contains(['\r', '\n']))
                || address.is_some_and(|a| a.contains(['\r', '\n']))
            {
                return Err(FromProblem::LineBreak);
            }
            let address = address.unwrap_or_default().trim();
            if address.is_empty() {
                return Err(FromProblem::Missing);
            }
            if is_address(address) {
                Ok(address.to_string())
            } else {
                Err(FromProblem::Invalid(truncate_chars(address, 200)))
            }
        }
        many => Err(FromProblem::Several(many.len())),
    }
}

/// A CR or LF in a raw header value that is not folding (CRLF or LF followed by
/// a space or tab) nor the field's own line end.
fn has_line_break(value: &[u8]) -> bool {
    let value = value
        .strip_suffix(b"\r\n")
        .or_else(|| value.strip_suffix(b"\n"))
        .unwrap_or(value);
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r'
                if value.get(i + 1) == Some(&b'\n')
                    && matches!(value.get(i + 2), Some(b' ' | b'\t')) =>
            {
                i += 3;
            }
            b'\n' if matches!(value.get(i + 1), Some(b' ' | b'\t')) => i += 2,
            b'\r' | b'\n' => return true,
            _ => i += 1,
        }
    }
    false
}

/// `local@domain`, both non-empty, no spaces or control characters.
pub(crate) fn is_address(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
                && !local.contains(['<', '>'])
                && !domain.contains(['<', '>', '@'])
        }
        None => false,
    }
}

fn addresses<'a>(values: impl Iterator<Item = &'a HeaderValue<'a>>) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        let mut push = |addr: Option<&str>| {
            if let Some(addr) = addr.map(str::trim).filter(|a| !a.is_empty())
                && out.len() < MAX_ADDRESSES
            {
                out.push(truncate_chars(addr, MAX_FIELD_CHARS));
            }
        };
        match value {
            HeaderValue::Address(Address::List(list)) => {
                list.iter().for_each(|a| push(a.address.as_deref()));
            }
            HeaderValue::Address(Address::Group(groups)) => groups
                .iter()
                .flat_map(|g| g.addresses.iter())
                .for_each(|a| push(a.address.as_deref())),
            _ => {}
        }
    }
    out
}

fn return_path(value: &str) -> ReturnPath {
    let value = unfold(value);
    let inner = value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if inner.is_empty() {
        ReturnPath::Empty
    } else {
        ReturnPath::Address(truncate_chars(inner, MAX_FIELD_CHARS))
    }
}

/// The value's first word, lowercased: `auto-replied` of
/// `Auto-Submitted: auto-replied; owner-email=…`, `bulk` of `Precedence: bulk`.
fn first_token(value: &str) -> String {
    let value = unfold(value);
    let token = value
        .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    truncate_chars(&token.to_ascii_lowercase(), 64)
}

/// A raw header value on one line: every run of whitespace (folding included)
/// becomes one space.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(4 * MAX_FIELD_CHARS));
    for word in value.split_whitespace() {
        if out.len() > 8 * MAX_FIELD_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A decoded one-line field: control characters become spaces, runs of spaces
/// one, at most [`MAX_FIELD_CHARS`] characters.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        if count >= MAX_FIELD_CHARS {
            break;
        }
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        space = false;
        out.push(c);
        count += 1;
    }
    out
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The body as text: every `text/plain` body part in order, else the HTML
/// part converted; with whether it was cut and whether it came from HTML.
fn body_text(message: &Message<'_>) -> (String, bool, bool) {
    let mut body = String::new();
    let mut truncated = false;
    let mut from_html = false;
    for part in message.text_bodies() {
        let piece: Cow<'_, str> = match &part.body {
            PartType::Text(text) => match flowed(part) {
                Some(delsp) => Cow::Owned(unflow(text, delsp)),
                None => Cow::Borrowed(text.as_ref()),
            },
            PartType::Html(html) => {
                from_html = true;
                let (text, cut) = html_to_text(html);
                truncated |= cut;
                Cow::Owned(text)
            }
            _ => continue,
        };
        if !body.is_empty() {
            body.push('\n');
        }
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        let kept = prefix_bytes(&piece, room);
        truncated |= kept.len() < piece.len();
        body.push_str(kept);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    if body.is_empty()
        && let Some(html) = message.html_bodies().find_map(|p| match &p.body {
            PartType::Html(html) => Some(html),
            _ => None,
        })
    {
        from_html = true;
        let (text, cut) = html_to_text(html);
        truncated |= cut;
        let kept = prefix_bytes(&text, MAX_BODY_BYTES);
        truncated |= kept.len() < text.len();
        body.push_str(kept);
    }
    (body, truncated, from_html)
}

/// `Some(delsp)` for a `text/plain; format=flowed` part (RFC 3676).
fn flowed(part: &MessagePart<'_>) -> Option<bool> {
    let content_type = part.content_type()?;
    let is = |name: &str, value: &str| {
        content_type
            .attribute(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    is("format", "flowed").then(|| is("delsp", "yes"))
}

/// Joins the soft line breaks of `format=flowed` text (a line ending in a
/// space continues on the next line of the same quote depth), removes space
/// stuffing, and writes quotes back as `> ` prefixes. Only the first
/// [`MAX_BODY_BYTES`] of the text are read.
fn unflow(text: &str, delsp: bool) -> String {
    let text = prefix_bytes(text, MAX_BODY_BYTES);
    let mut out = String::with_capacity(text.len());
    // The quote depth of the line being joined, when its last piece was soft.
    let mut open: Option<usize> = None;
    for (i, raw) in text.split('\n').enumerate() {
        if i > 0 && open.is_none() {
            out.push('\n');
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = line.bytes().take_while(|&b| b == b'>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        if open.is_some_and(|d| d != depth) {
            // A change of quote depth ends the line even after a soft break.
            out.push('\n');
            open = None;
        }
        if open.is_none() && depth > 0 {
            out.push_str(&">".repeat(depth));
            out.push(' ');
        }
        if content.ends_with(' ') && content != "-- " {
            out.push_str(if delsp {
                &content[..content.len() - 1]
            } else {
                content
            });
            open = Some(depth);
        } else {
            out.push_str(content);
            open = None;
        }
    }
    out
}

/// HTML to plain text, quotes as `> ` lines (so the quote stripper treats an
/// HTML reply as it treats a plain one), links without footnotes. The input is
/// cut at [`MAX_HTML_BYTES`] and before any element nested deeper than
/// [`MAX_HTML_DEPTH`] first; the bool says it was cut.
pub fn html_to_text(html: &str) -> (String, bool) {
    let kept = prefix_bytes(html, MAX_HTML_BYTES);
    let kept = depth_limited_prefix(kept, MAX_HTML_DEPTH);
    let cut = kept.len() < html.len();
    // A wide page so lines are not wrapped; allow_width_overflow keeps deeply
    // nested quotes from failing as "too narrow".
    let text = match html2text::config::rich()
        .allow_width_overflow()
        .no_table_borders()
        .lines_from_read(kept.as_bytes(), 10_000)
    {
        Ok(lines) => text_with_links(&lines),
        // mail-parser's own conversion is the fallback: it never fails.
        Err(_) => mail_parser::decoders::html::html_to_text(kept),
    };
    (text, cut)
}

/// Rendered lines as text, each link followed by its target in angle brackets
/// unless the link's text already says it (`<a href="https://x">https://x</a>`).
fn text_with_links(
    lines: &[html2text::render::TaggedLine<Vec<html2text::render::RichAnnotation>>],
) -> String {
    use html2text::render::RichAnnotation;

    fn close(out: &mut String, link: Option<(&str, String)>) {
        let Some((url, text)) = link else {
            return;
        };
        let text = text.trim();
        let said = url == text
            || url.strip_prefix("mailto:") == Some(text)
            || url
                .split_once("://")
                .is_some_and(|(_, rest)| rest.trim_end_matches('/') == text.trim_end_matches('/'));
        let kept = ["http://", "https://", "ftp://", "mailto:"]
            .iter()
            .any(|scheme| {
                url.get(..scheme.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
            });
        if kept && !said {
            out.push_str(&format!(" <{url}>"));
        }
    }

    let mut out = String::new();
    for line in lines {
        let mut open: Option<(&str, String)> = None;
        for piece in line.tagged_strings() {
            let link = piece.tag.iter().find_map(|a| match a {
                RichAnnotation::Link(url) => Some(url.as_str()),
                _ => None,
            });
            if open.as_ref().is_some_and(|(url, _)| Some(*url) != link) {
                close(&mut out, open.take());
            }
            out.push_str(&piece.s);
            if let Some(url) = link {
                open.get_or_insert_with(|| (url, String::new()))
                    .1
                    .push_str(&piece.s);
            }
        }
        close(&mut out, open.take());
        out.push('\n');
    }
    out
}

/// The most elements open at once in HTML handed to the conversion. An HTML
/// parser's work per tag grows with the open elements (scope checks), so
/// nesting is what makes a small hostile document slow; a quote 500 levels
/// deep keeps its outer 128 levels, which is all the reply above it needs.
pub const MAX_HTML_DEPTH: usize = 128;

/// `html` up to the tag that would open element number `max_depth + 1`,
/// counting by a quick scan: void elements and those whose end tag may be left
/// out (`p`, `li`, `td`, …) are not counted, as the parser closes them itself.
fn depth_limited_prefix(html: &str, max_depth: usize) -> &str {
    const UNCOUNTED: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "keygen", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td",
        "th", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html",
        "head", "body",
    ];
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset;
        let rest = &bytes[start + 1..];
        if rest.starts_with(b"!--") {
            i = match html[start..].find("-->") {
                Some(end) => start + end + 3,
                None => return html,
            };
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let Some(tag_end) = rest.iter().position(|&b| b == b'>') else {
            return html;
        };
        i = start + 1 + tag_end + 1;
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = &rest[name_start..name_start + name_len];
        if UNCOUNTED
            .iter()
            .any(|u| u.as_bytes().eq_ignore_ascii_case(name))
        {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if tag_end == 0 || rest[tag_end - 1] != b'/' {
            depth += 1;
            if depth > max_depth {
                return &html[..start];
            }
        }
    }
    html
}

/// The `multipart/report` at the top of the message, if it is one.
fn report(message: &Message<'_>) -> Option<Report> {
    let root = message.root_part();
    let content_type = root.content_type()?;
    if !content_type.ctype().eq_ignore_ascii_case("multipart")
        || !content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return None;
    }
    let report_type = content_type
        .attribute("report-type")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut report = Report {
        report_type: truncate_chars(&report_type, 64),
        recipients: Vec::new(),
        original_message_id: None,
    };
    let children: &[u32] = match &root.body {
        PartType::Multipart(ids) => ids,
        _ => &[],
    };
    for &id in children {
        let Some(part) = message.part(id) else {
            continue;
        };
        let (ctype, subtype) = part_type(part);
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status")
                if report.recipients.is_empty() =>
            {
                report.recipients = delivery_status(part.contents());
            }
            ("message", "rfc822" | "global") if report.original_message_id.is_none() => {
                report.original_message_id = match &part.body {
                    PartType::Message(returned) => returned.message_id().and_then(bracketed),
                    // Not parsed as a message (too deep, encoded): its headers.
                    _ => headers_message_id(part.contents()),
                };
            }
            ("text", "rfc822-headers") | ("message", "global-headers")
                if report.original_message_id.is_none() =>
            {
                report.original_message_id = headers_message_id(part.contents());
            }
            _ => {}
        }
    }
    Some(report)
}

fn part_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        ),
        None => (String::new(), String::new()),
    }
}

/// The Message-ID in a block of returned header fields.
fn headers_message_id(headers: &[u8]) -> Option<String> {
    MessageParser::default()
        .parse_headers(headers)?
        .message_id()
        .and_then(bracketed)
}

/// The per-recipient blocks of a `message/delivery-status` body: groups of
/// header-like fields separated by blank lines, the first per-message.
fn delivery_status(body: &[u8]) -> Vec<DsnRecipient> {
    let mut recipients = Vec::new();
    for block in blocks(body) {
        if recipients.len() >= MAX_DSN_RECIPIENTS {
            break;
        }
        let Some(fields) = MessageParser::default().parse_headers(block) else {
            continue;
        };
        let mut recipient = DsnRecipient::default();
        let mut is_recipient = false;
        for (name, value) in raw_headers(&fields) {
            let value = value.as_ref();
            let value = truncate_chars(unfold(value).trim(), MAX_FIELD_CHARS);
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("Final-Recipient") {
                recipient.final_recipient = Some(typed_address(&value));
                is_recipient = true;
            } else if is("Original-Recipient") {
                recipient.original_recipient = Some(typed_address(&value));
            } else if is("Action") {
                // `failed`, or with a comment: `failed (permanent)`.
                let action = value.split([' ', '(', ';']).next().unwrap_or_default();
                recipient.action = Some(action.to_ascii_lowercase());
                is_recipient = true;
            } else if is("Status") {
                let status = value.split_whitespace().next().unwrap_or_default();
                recipient.status = Some(status.to_string());
            } else if is("Diagnostic-Code") {
                recipient.diagnostic = Some(value);
            }
        }
        if is_recipient {
            recipients.push(recipient);
        }
    }
    recipients
}

/// Splits `body` at blank lines (empty or whitespace only) into non-empty
/// blocks, each ending with its last line's line end.
fn blocks(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut end = 0;
            let mut found_blank = None;
            while end < rest.len() {
                let line_end = rest[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |p| end + p + 1);
                if rest[end..line_end].iter().all(u8::is_ascii_whitespace) {
                    found_blank = Some((end, line_end));
                    break;
                }
                end = line_end;
            }
            let (block, next) = match found_blank {
                Some((start, after)) => (&rest[..start], after),
                None => (rest, rest.len()),
            };
            rest = &rest[next..];
            if !block.is_empty() {
                return Some(block);
            }
        }
    })
}

/// `rfc822; dana@example.org` → `dana@example.org`.
fn typed_address(value: &str) -> String {
    let address = match value.split_once(';') {
        Some((_, address)) => address,
        None => value,
    };
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mail::fixtures;

    fn parsed(raw: &str) -> Inbound {
        parse(raw.as_bytes()).expect("a message")
    }

    #[test]
    fn empty_and_garbage_input_is_not_a_message() {
        assert_eq!(parse(b""), Err(NotAMessage::Empty));
        assert_eq!(parse(b" \r\n\t\n"), Err(NotAMessage::Empty));
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(parse(&garbage), Err(NotAMessage::NoHeader));
        assert_eq!(
            parse(b"\x00\x01\x02\xff\xfe binary: with a colon\n\x00"),
            Err(NotAMessage::NoHeader)
        );
        assert_eq!(
            parse(b"just some words\nwithout any header\n"),
            Err(NotAMessage::NoHeader)
        );
        assert_eq!(
            NotAMessage::NoHeader.to_string(),
            "the input has no mail header (no From, To, Subject, Date, Message-ID or Received)"
        );
    }

    #[test]
    fn a_thunderbird_reply_gives_its_fields() {
        let m = parsed(fixtures::THUNDERBIRD_REPLY);
        assert_eq!(m.message_id.as_deref(), Some("<b7e1c0de-1@example.com>"));
        assert_eq!(m.in_reply_to, ["<9.4.00000000000000ab@help.example.org>"]);
        assert_eq!(
            m.references,
            [
                "<ticket-7.5f3a9c@help.example.org>",
                "<9.4.00000000000000ab@help.example.org>"
            ]
        );
        assert_eq!(m.from, Ok("dana@example.com".to_string()));
        assert_eq!(m.to, ["help+7@example.org"]);
        assert_eq!(m.cc, ["lee@example.com"]);
        assert_eq!(m.delivered_to, ["help+7@example.org"]);
        assert_eq!(m.subject, "Re: [#7] Printer on fire");
        assert_eq!(
            m.return_path,
            ReturnPath::Address("dana@example.com".into())
        );
        assert_eq!(m.auto_submitted, None);
        assert!(!m.has_helpdesk_ticket);
        assert_eq!(
            m.authentication_results,
            [
                "mx.example.org; spf=pass smtp.mailfrom=dana@example.com; dkim=pass header.d=example.com; dmarc=pass (p=none) header.from=example.com"
            ]
        );
        assert!(m.body.starts_with("It is out now, thanks."));
        assert!(!m.body_from_html);
        assert_eq!(m.attachments, 0);
        assert!(m.report.is_none());
    }

    #[test]
    fn an_html_only_reply_is_converted_with_its_quote_marked() {
        let m = parsed(fixtures::GMAIL_HTML_REPLY);
        assert!(m.body_from_html);
        assert!(m.body.contains("Thanks, that fixed it."), "{}", m.body);
        assert!(m.body.contains("> Ticket #7 was updated"), "{}", m.body);
        assert!(!m.body.contains("<div"), "{}", m.body);
        // The address is the link's text: its mailto: target is not repeated.
        assert!(
            m.body.contains("Helpdesk <help+7@example.org> wrote:"),
            "{}",
            m.body
        );
        let (text, _) = html_to_text(
            "<p>See <a href=\"https://x.org/a\">the page</a>, <a href=\"https://x.org/\">x.org</a> \
             and <a href=\"javascript:alert(1)\">this</a> &amp; <b>bold</b></p><ul><li>one</li></ul>",
        );
        assert_eq!(
            text.trim(),
            "See the page <https://x.org/a>, x.org and this & bold\n* one"
        );
    }

    /// Found by `classification_is_deterministic`: a link target whose first
    /// bytes are not ASCII.
    #[test]
    fn a_link_target_starting_with_non_ascii_is_read() {
        let (text, _) = html_to_text("<a href=\"mailto:\u{fffd}elp@example.org\">help</a>");
        assert_eq!(text.trim(), "help <mailto:\u{fffd}elp@example.org>");
        let (text, _) = html_to_text("<a href=\"\u{e9}\u{e9}\u{e9}\u{e9}\">x</a>");
        assert_eq!(text.trim(), "x");
    }

    #[test]
    fn flowed_text_is_joined() {
        let text = "It is out now, \r\nthanks.\r\n \r\n>> Is it \r\n>> on?\r\n> yes \r\n>> no\r\n-- \r\nDana";
        assert_eq!(
            unflow(text, false),
            "It is out now, thanks.\n\n>> Is it on?\n> yes \n>> no\n-- \nDana"
        );
        assert_eq!(unflow("a\u{e9} \nb", true), "a\u{e9}b");
        assert_eq!(unflow(" From me\n", false), "From me\n");
        let m = parsed(fixtures::THUNDERBIRD_REPLY);
        assert!(
            m.body.contains("The toner was the problem.\n"),
            "{}",
            m.body
        );
    }

    #[test]
    fn attachments_are_counted() {
        let m = parsed(fixtures::OUTLOOK_REPLY);
        assert_eq!(m.attachments, 1);
        assert_eq!(m.from, Ok("Sam.Lee@Example.COM".to_string()));
    }

    #[test]
    fn postfix_bounce_gives_dsn_fields_and_the_returned_message_id() {
        let m = parsed(fixtures::POSTFIX_BOUNCE);
        let report = m.report.expect("a report");
        assert!(report.is_delivery_status());
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("<12.3.00000000deadbeef@help.example.org>")
        );
        assert_eq!(
            report.recipients,
            [DsnRecipient {
                final_recipient: Some("gone@example.net".into()),
                original_recipient: Some("gone@example.net".into()),
                action: Some("failed".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some(
                    "smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table".into()
                ),
            }]
        );
        assert!(report.recipients[0].is_permanent());
        assert_eq!(m.return_path, ReturnPath::Empty);
        assert_eq!(m.auto_submitted.as_deref(), Some("auto-replied"));
    }

    #[test]
    fn exim_bounce_gives_the_message_id_of_the_returned_message() {
        let m = parsed(fixtures::EXIM_BOUNCE);
        let report = m.report.expect("a report");
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("<13.3.00000000deadbeef@help.example.org>")
        );
        assert_eq!(report.recipients.len(), 1);
        assert_eq!(report.recipients[0].status.as_deref(), Some("5.0.0"));
        assert_eq!(
            report.recipients[0].final_recipient.as_deref(),
            Some("nobody@example.net")
        );
    }

    #[test]
    fn automatic_markers_are_read() {
        let m = parsed(fixtures::VACATION_REPLY);
        assert_eq!(m.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(m.precedence.as_deref(), Some("junk"));
        let m = parsed(fixtures::MAILING_LIST);
        assert_eq!(m.precedence.as_deref(), Some("list"));
    }

    #[test]
    fn from_with_two_addresses_or_a_line_break_is_a_problem() {
        let two = "From: a@example.com, b@example.com\r\nTo: help@example.org\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(two).from, Err(FromProblem::Several(2)));
        let fields = "From: a@example.com\r\nFrom: b@example.com\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(fields).from, Err(FromProblem::Several(2)));
        let bare_cr = "From: a@example.com\rBcc: victim@example.com\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(bare_cr).from, Err(FromProblem::LineBreak));
        let encoded =
            "From: =?utf-8?q?Eve=0D=0ABcc=3A_x?= <eve@example.com>\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(encoded).from, Err(FromProblem::LineBreak));
        let folded =
            "From: \"A very long display name\"\r\n <a@example.com>\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(folded).from, Ok("a@example.com".into()));
        let none = "Subject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(none).from, Err(FromProblem::Missing));
        let group = "From: team: a@example.com, b@example.com;\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(parsed(group).from, Err(FromProblem::Several(2)));
        let junk = "From: not an address\r\nSubject: x\r\n\r\nhi\r\n";
        assert!(matches!(
            parsed(junk).from,
            Err(FromProblem::Missing | FromProblem::Invalid(_))
        ));
        assert_eq!(
            FromProblem::Several(2).to_string(),
            "From names 2 addresses, not one"
        );
    }

    #[test]
    fn a_one_megabyte_header_is_bounded() {
        let long = "x".repeat(1 << 20);
        let raw = format!(
            "From: a@example.com\r\nSubject: {long}\r\nReferences: {}\r\nX-Filler: {long}\r\n\r\nhi\r\n",
            (0..20_000)
                .map(|i| format!("<{i}@x>"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let m = parsed(&raw);
        assert_eq!(m.subject.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(m.references.len(), MAX_IDS);
        assert_eq!(m.references[0], "<0@x>");
        assert_eq!(m.references[MAX_IDS - 1], "<19999@x>");
        assert_eq!(m.body.trim(), "hi");
    }

    #[test]
    fn a_large_body_is_cut_at_the_cap() {
        let raw = format!(
            "From: a@example.com\r\nSubject: big\r\n\r\n{}",
            "line of text\r\n".repeat(3 * (1 << 20) / 14)
        );
        let m = parsed(&raw);
        assert!(m.body_truncated);
        assert!(m.body.len() <= MAX_BODY_BYTES);
        let html = format!(
            "From: a@example.com\r\nSubject: big\r\nContent-Type: text/html\r\n\r\n<p>{}</p>",
            "word ".repeat(MAX_HTML_BYTES)
        );
        let m = parsed(&html);
        assert!(m.body_from_html && m.body_truncated);
        assert!(m.body.len() <= MAX_BODY_BYTES);
    }

    #[test]
    fn a_25_megabyte_message_is_read() {
        let chunk = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw\r\n";
        let attachment = chunk.repeat(25 * (1 << 20) / chunk.len());
        assert!(attachment.len() < DEFAULT_MAX_MESSAGE_BYTES);
        let raw = format!(
            "From: a@example.com\r\nSubject: big\r\nMessage-ID: <big@example.com>\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
             Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {attachment}--b--\r\n"
        );
        assert!(raw.len() > 25 * 1000 * 1000);
        let m = parsed(&raw);
        assert_eq!(m.body.trim(), "see attached");
        assert_eq!(m.attachments, 1);
    }

    #[test]
    fn ten_thousand_parts_are_counted() {
        let mut raw = String::from(
            "From: a@example.com\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nbody\r\n",
        );
        for i in 0..10_000 {
            raw.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream; name=f{i}\r\n\r\nx\r\n"
            ));
        }
        raw.push_str("--b--\r\n");
        let m = parsed(&raw);
        assert_eq!(m.attachments, 10_000);
        assert_eq!(m.body.trim(), "body");
    }

    #[test]
    fn deeply_nested_parts_and_a_malformed_boundary_are_read() {
        let mut raw = String::from("From: a@example.com\r\nSubject: deep\r\n");
        for i in 0..2_000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
        let unclosed = parsed(&raw);
        for i in (0..2_000).rev() {
            raw.push_str(&format!("--b{i}--\r\n"));
        }
        let closed = parsed(&raw);
        assert_eq!((closed.body.as_str(), closed.attachments), ("innermost", 0));
        // Never closed: mail-parser keeps the unsplit rest as one non-body part.
        assert_eq!((unclosed.body.as_str(), unclosed.attachments), ("", 1));

        let bad = "From: a@example.com\r\nSubject: bad\r\nContent-Type: multipart/mixed; boundary=\"unterminated\r\n\r\n--unterminated\r\nContent-Type: text/plain\r\n\r\ntext\r\n";
        assert_eq!(parsed(bad).from, Ok("a@example.com".into()));
        let missing = "From: a@example.com\r\nSubject: bad\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\ntext\r\n";
        // A multipart that cannot be split has no body, only one opaque part:
        // as a reply it is refused as empty (see classify), never half-read.
        let m = parsed(missing);
        assert_eq!((m.body.as_str(), m.attachments), ("", 1));
        let m = parsed(bad);
        assert_eq!((m.body.as_str(), m.attachments), ("", 1));
    }

    #[test]
    fn deeply_nested_html_converts_without_exhausting_the_stack() {
        let quotes = format!(
            "<p>Top</p>{}deep{}",
            "<blockquote>".repeat(500),
            "</blockquote>".repeat(500)
        );
        let (text, cut) = html_to_text(&quotes);
        assert!(cut, "cut at {MAX_HTML_DEPTH} levels");
        assert!(text.starts_with("Top"), "{}", &text[..text.len().min(200)]);
        assert!(!text.contains("deep"));
        let divs = format!("{}x{}", "<div>".repeat(10_000), "</div>".repeat(10_000));
        let started = std::time::Instant::now();
        let (text, cut) = html_to_text(&divs);
        assert!(cut && text.trim().is_empty(), "{text:?}");
        let _ = html_to_text(&"<table><tr><td>".repeat(2_000));
        // Wide rather than deep: 8,000 closed elements at the deepest level.
        let wide = format!(
            "{}{}{}",
            "<div>".repeat(MAX_HTML_DEPTH - 1),
            "<div>x</div>".repeat(8_000),
            "</div>".repeat(MAX_HTML_DEPTH - 1)
        );
        let (text, cut) = html_to_text(&wide);
        assert!(!cut && text.matches('x').count() == 8_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn invalid_utf8_and_mixed_charsets_decode_without_failing() {
        let raw = b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.com>\r\nSubject: =?koi8-r?b?8NLJ18XU?= and =?utf-8?q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe bytes\r\n--b--\r\n".to_vec();
        let m = parse(&raw).expect("a message");
        assert_eq!(m.from, Ok("jorg@example.com".into()));
        assert!(m.subject.contains("café"), "{}", m.subject);
        assert!(m.body.contains("Grüße"), "{}", m.body);
        assert!(m.body.contains("bad \u{fffd}"), "{}", m.body);
    }

    #[test]
    fn headers_with_invalid_utf8_are_still_read() {
        let m = parse(
            b"From: a@example.com\r\nAuthentication-Results: mx.example.org; dmarc=fail header.from=\xff.example\r\n\
              Authentication-Results: mx.example.org; dmarc=pass header.from=example.com\r\n\
              X-Helpdesk-Ticket: \xfe\r\nAuto-Submitted: auto-generated\xff\r\n\r\nhi",
        )
        .unwrap();
        assert_eq!(m.authentication_results.len(), 2);
        assert!(m.authentication_results[0].starts_with("mx.example.org; dmarc=fail"));
        assert!(m.has_helpdesk_ticket);
        assert_eq!(m.auto_submitted.as_deref(), Some("auto-generated\u{fffd}"));
    }

    #[test]
    fn return_path_and_markers() {
        let m = parsed(
            "Return-Path: <>\r\nFrom: a@example.com\r\nX-Helpdesk-Ticket: 7\r\nX-Autoreply: yes\r\nAuto-Submitted: Auto-Generated; owner=x\r\n\r\nhi\r\n",
        );
        assert_eq!(m.return_path, ReturnPath::Empty);
        assert!(m.has_helpdesk_ticket);
        assert_eq!(m.autoreply_header.as_deref(), Some("X-Autoreply"));
        assert_eq!(m.auto_submitted.as_deref(), Some("auto-generated"));
        assert_eq!(
            parsed("From: a@example.com\r\n\r\nhi").return_path,
            ReturnPath::Absent
        );
    }

    /// A fixture with some bytes overwritten, some cut out, and a tail cut off.
    pub(crate) fn damaged(
        index: usize,
        edits: &[(proptest::sample::Index, u8)],
        keep: proptest::sample::Index,
    ) -> Vec<u8> {
        let mut bytes = fixtures::ALL[index % fixtures::ALL.len()]
            .as_bytes()
            .to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            if byte % 4 == 0 {
                bytes.remove(i);
            } else {
                bytes[i] = *byte;
            }
        }
        let keep = keep.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        bytes
    }

    proptest::proptest! {
        #![proptest_config(crate::mail::proptest_config())]

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)
        ) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_damaged_fixtures(
            index in 0usize..16,
            edits in proptest::collection::vec(proptest::prelude::any::<(proptest::sample::Index, u8)>(), 0..24),
            keep in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let bytes = damaged(index, &edits, keep);
            if let Ok(m) = parse(&bytes) {
                proptest::prop_assert!(m.body.len() <= MAX_BODY_BYTES);
                proptest::prop_assert!(m.subject.chars().count() <= MAX_FIELD_CHARS);
            }
        }

        #[test]
        fn unflowing_never_panics(text in "[a-z> \r\n-]{0,200}", delsp in proptest::prelude::any::<bool>()) {
            let _ = unflow(&text, delsp);
        }

        #[test]
        fn html_conversion_never_panics(html in "(<[a-z/!-]{0,4}[ a-z=\"]{0,6}>?|[a-z &;#<>]{0,5}){0,60}") {
            let _ = html_to_text(&html);
        }
    }
}
