//! The text a reply leaves for a comment (SPEC §6): line ends normalised, the
//! quoted message at the end removed (the trailing `>` lines and the
//! `On … wrote:` line before them, an Outlook `-----Original Message-----` or
//! `From:`/`Sent:` block and all after it), the signature after a `-- ` line
//! removed, blank lines around trimmed; and the note on attachments left out.
//!
//! Quotes inside the reply (answers interleaved with `>` lines) are kept: only
//! the quoted tail goes. A forward (`Fwd:`, `Fw:`, `WG:` subject) is kept
//! whole: what it carries below the separator is the point of sending it. Every step is one pass over the lines, so a reply
//! quoting 500 levels deep costs no more than its length. Stripping twice gives
//! the same text as stripping once. Whether a blank result is refused is the
//! caller's rule (`classify`).

/// The reply without its quoted tail and signature; empty when nothing is left.
pub fn strip_reply(body: &str) -> String {
    let normalised = normalise_line_ends(body);
    let lines: Vec<&str> = normalised.split('\n').collect();
    let mut end = lines.len();
    if let Some(at) = lines.iter().enumerate().position(|(i, line)| {
        is_original_message_separator(line) || is_outlook_header_block(&lines[i..])
    }) {
        end = at;
    }
    if let Some(at) = lines[..end].iter().position(|l| is_signature_delimiter(l)) {
        end = at;
    }
    end = without_quoted_tail(&lines[..end]);
    without_blank_edges(&lines[..end].join("\n")).to_string()
}

/// The text without its leading blank lines and trailing whitespace (the first
/// line keeps its indentation).
fn without_blank_edges(text: &str) -> &str {
    let text = text.trim_end();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            break;
        }
        start += line.len();
    }
    &text[start..]
}

/// The text kept of a message's body: a forward whole, a reply stripped.
pub fn reply_text(subject: &str, body: &str) -> String {
    if is_forward(subject) {
        without_blank_edges(&normalise_line_ends(body)).to_string()
    } else {
        strip_reply(body)
    }
}

/// The subject's first prefix marks a forward.
pub fn is_forward(subject: &str) -> bool {
    let Some((prefix, _)) = subject.trim_start().split_once(':') else {
        return false;
    };
    ["fwd", "fw", "wg"]
        .iter()
        .any(|p| prefix.trim().eq_ignore_ascii_case(p))
}

/// The note on attachments left out: `1 attachment was left out`.
pub fn attachments_note(count: usize) -> Option<String> {
    match count {
        0 => None,
        1 => Some("1 attachment was left out".to_string()),
        n => Some(format!("{n} attachments were left out")),
    }
}

/// The note for a body cut at the size cap.
pub const TRUNCATED_NOTE: &str = "the message was too long: its end was left out";

/// A comment's text: the stripped reply, then a bracketed line for what was left
/// out. `None` when the reply itself is blank (refused as `empty reply`).
///
/// `truncated` says the body was cut at a size cap. Stripping only removes an
/// end, so when it removed anything the cut fell in the quote or signature and
/// needs no note; the note is added only when the reply runs to the cut.
pub fn comment_text(
    subject: &str,
    body: &str,
    attachments: usize,
    truncated: bool,
) -> Option<String> {
    let reply = reply_text(subject, body);
    if reply.is_empty() {
        return None;
    }
    let cut_in_reply = truncated && runs_to_the_end(body, &reply);
    Some(with_notes(reply, attachments, cut_in_reply))
}

/// Stripping left the whole body but for blank edges.
fn runs_to_the_end(body: &str, reply: &str) -> bool {
    without_blank_edges(&normalise_line_ends(body)).len() == reply.len()
}

/// A new ticket's description: the subject, a blank line and the stripped body,
/// with the same notes. `None` when subject and body are both blank.
pub fn description_text(
    subject: &str,
    body: &str,
    attachments: usize,
    truncated: bool,
) -> Option<String> {
    let reply = reply_text(subject, body);
    let subject = subject.trim();
    let truncated = truncated && runs_to_the_end(body, &reply);
    let text = match (subject.is_empty(), reply.is_empty()) {
        (true, true) => return None,
        (false, true) => subject.to_string(),
        (true, false) => reply,
        (false, false) => format!("{subject}\n\n{reply}"),
    };
    Some(with_notes(text, attachments, truncated))
}

fn with_notes(mut text: String, attachments: usize, truncated: bool) -> String {
    if truncated {
        text.push_str(&format!("\n\n[{TRUNCATED_NOTE}]"));
    }
    if let Some(note) = attachments_note(attachments) {
        text.push_str(&format!("\n\n[{note}]"));
    }
    text
}

fn normalise_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// `-- ` (RFC 3676's signature delimiter), also without its trailing space as
/// many clients send it.
fn is_signature_delimiter(line: &str) -> bool {
    line.trim_end() == "--"
}

/// `-----Original Message-----` (Outlook): the text between the dash runs
/// names the message replied to. (A forward's separator is not one: what it
/// carries is meant to be read.)
fn is_original_message_separator(line: &str) -> bool {
    let line = line.trim();
    if line.len() < 10 || !line.starts_with("-----") || !line.ends_with("-----") {
        return false;
    }
    let inner = line.trim_matches('-').trim().to_lowercase();
    matches!(
        inner.as_str(),
        "original message" | "original-nachricht" | "ursprüngliche nachricht"
    )
}

/// Outlook's reply header: an optional underscore rule, then `From:` followed
/// within the next lines by `Sent:` or `Date:` (and `To:`/`Subject:`).
fn is_outlook_header_block(lines: &[&str]) -> bool {
    let mut rest = lines;
    if let Some(first) = rest.first() {
        let t = first.trim();
        if t.len() >= 10 && t.chars().all(|c| c == '_') {
            rest = &rest[1..];
            // The rule alone is Outlook's marker when a From: line follows.
            return rest
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| starts_with_field(l, "from"));
        }
    }
    let Some(first) = rest.first() else {
        return false;
    };
    if !starts_with_field(first, "from") {
        return false;
    }
    rest.iter()
        .skip(1)
        .take(3)
        .any(|l| starts_with_field(l, "sent") || starts_with_field(l, "date"))
}

fn starts_with_field(line: &str, name: &str) -> bool {
    let line = line.trim_start().trim_start_matches('*');
    line.len() > name.len()
        && line.as_bytes()[name.len()] == b':'
        && line[..name.len()].eq_ignore_ascii_case(name)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// How many of `lines` remain once the quoted tail is gone: trailing `>` and
/// blank lines, then the attribution (`On … wrote:`, over up to three lines)
/// right before them, repeated while a quote block ends what is left. One
/// backward pass.
fn without_quoted_tail(lines: &[&str]) -> usize {
    let mut end = lines.len();
    loop {
        let mut quoted = 0;
        while end > 0 && (is_quoted(lines[end - 1]) || is_blank(lines[end - 1])) {
            quoted += usize::from(is_quoted(lines[end - 1]));
            end -= 1;
        }
        if quoted == 0 {
            // Only blank lines (or nothing) were at the end: no quote to strip.
            return end;
        }
        match attribution_len(&lines[..end]) {
            Some(n) => end -= n,
            None => return end,
        }
    }
}

/// The number of lines at the end of `lines` that form an attribution line
/// (a client may wrap it over up to three): the longest that starts like one
/// (`On …`), else the shortest that ends like one (`… <a@b> wrote:`).
fn attribution_len(lines: &[&str]) -> Option<usize> {
    let mut shortest = None;
    let mut longest_opening = None;
    for n in 1..=3.min(lines.len()) {
        if lines[lines.len() - n].trim().is_empty() {
            break;
        }
        let joined = lines[lines.len() - n..]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        if is_attribution(&joined) {
            shortest.get_or_insert(n);
            if starts_like_attribution(&joined) {
                longest_opening = Some(n);
            }
        }
    }
    longest_opening.or(shortest)
}

fn starts_like_attribution(line: &str) -> bool {
    let lower = line.trim_start().to_lowercase();
    ["on ", "am ", "le ", "el "]
        .iter()
        .any(|p| lower.starts_with(p))
}

fn is_attribution(line: &str) -> bool {
    let line = line.trim();
    if !line.ends_with(':') || line.len() > 600 {
        return false;
    }
    let lower = line.to_lowercase();
    (lower.ends_with("wrote:") && (lower.starts_with("on ") || lower.contains('@')))
        || (lower.starts_with("am ") && lower.contains("schrieb"))
        || (lower.starts_with("le ") && lower.contains("a écrit"))
        || (lower.starts_with("el ") && lower.contains("escribió"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{fixtures, parse::parse};

    #[test]
    fn a_thunderbird_reply_loses_its_quote_and_signature() {
        let m = parse(fixtures::THUNDERBIRD_REPLY.as_bytes()).unwrap();
        assert_eq!(
            strip_reply(&m.body),
            "It is out now, thanks.\n\nThe toner was the problem."
        );
    }

    #[test]
    fn an_outlook_reply_loses_the_original_message() {
        let m = parse(fixtures::OUTLOOK_REPLY.as_bytes()).unwrap();
        assert_eq!(strip_reply(&m.body), "Works for me now.\n\nSam");
        let classic = "Done.\r\n\r\n-----Original Message-----\r\nFrom: Helpdesk\r\nSent: Monday\r\n\r\nTicket #7 was updated";
        assert_eq!(strip_reply(classic), "Done.");
        let no_rule = "Done.\n\nFrom: Helpdesk <help@example.org>\nSent: Monday, 30 November 2026 10:00\nTo: Sam\nSubject: x\n\nold";
        assert_eq!(strip_reply(no_rule), "Done.");
    }

    #[test]
    fn an_html_only_gmail_reply_loses_its_quote() {
        let m = parse(fixtures::GMAIL_HTML_REPLY.as_bytes()).unwrap();
        assert_eq!(strip_reply(&m.body), "Thanks, that fixed it.");
    }

    #[test]
    fn interleaved_quotes_stay_and_only_the_tail_goes() {
        let text = "> Is it on?\nYes.\n> And the toner?\nEmpty.\n\nOn Mon, Dana wrote:\n> Is it on?\n> And the toner?\n";
        assert_eq!(
            strip_reply(text),
            "> Is it on?\nYes.\n> And the toner?\nEmpty."
        );
    }

    #[test]
    fn a_wrapped_attribution_is_removed() {
        let text = "Fixed.\n\nOn Mon, Nov 30, 2026 at 10:00 AM Helpdesk <\nhelp@example.org> wrote:\n\n> old\n";
        assert_eq!(strip_reply(text), "Fixed.");
    }

    #[test]
    fn the_signature_goes_and_a_plain_double_dash_too() {
        assert_eq!(strip_reply("Hello\n-- \nDana\nPhone 123"), "Hello");
        assert_eq!(strip_reply("Hello\r\n--\r\nDana"), "Hello");
        assert_eq!(strip_reply("a -- b\n---\nc"), "a -- b\n---\nc");
    }

    #[test]
    fn crlf_and_blank_edges_are_normalised() {
        assert_eq!(
            strip_reply("\r\n\r\n  Hi\r\nthere  \r\n\r\n"),
            "  Hi\nthere"
        );
        assert_eq!(strip_reply("a\rb"), "a\nb");
    }

    #[test]
    fn a_reply_of_only_quote_is_blank() {
        assert_eq!(strip_reply("On Mon, Dana wrote:\n> hi\n"), "");
        assert_eq!(strip_reply("\n\n-- \nsig"), "");
        assert_eq!(comment_text("Re: x", "> only a quote", 2, false), None);
    }

    #[test]
    fn notes_say_what_was_left_out() {
        assert_eq!(attachments_note(0), None);
        assert_eq!(attachments_note(1).unwrap(), "1 attachment was left out");
        assert_eq!(attachments_note(3).unwrap(), "3 attachments were left out");
        assert_eq!(
            comment_text("Re: x", "Here.", 1, false).unwrap(),
            "Here.\n\n[1 attachment was left out]"
        );
        assert_eq!(
            comment_text("Re: x", "Here.", 0, true).unwrap(),
            format!("Here.\n\n[{TRUNCATED_NOTE}]")
        );
        // Cut inside the quoted history: nothing of the reply is missing.
        assert_eq!(
            comment_text(
                "Re: x",
                "Here.\n\nOn Mon, Dana wrote:\n> old\n> ol",
                0,
                true
            )
            .unwrap(),
            "Here."
        );
        assert_eq!(
            description_text("Printer on fire", "", 0, false).unwrap(),
            "Printer on fire"
        );
        assert_eq!(
            description_text("Printer", "It smokes.\n-- \nDana", 0, false).unwrap(),
            "Printer\n\nIt smokes."
        );
        assert_eq!(description_text(" ", "> x", 0, false), None);
    }

    #[test]
    fn a_forward_is_kept_whole() {
        let body = "Please look at this.\n-- \nDana\n\n---------- Forwarded message ---------\nFrom: Customer <c@example.net>\nDate: Mon\n\n> The printer smokes.\n";
        assert!(is_forward("Fwd: printer") && is_forward(" FW: x") && is_forward("WG: x"));
        assert!(!is_forward("Re: Fwd: printer") && !is_forward("Forward planning"));
        assert_eq!(reply_text("Fwd: printer", body), body.trim_end());
        assert_eq!(reply_text("Re: printer", body), "Please look at this.");
        assert_eq!(
            description_text("Fwd: printer", "\n\nFYI\n> quoted\n", 0, false).unwrap(),
            "Fwd: printer\n\nFYI\n> quoted"
        );
        // Without the forward's subject, only the signature is cut there.
        assert_eq!(
            strip_reply(
                "See below.\n---------- Forwarded message ---------\nFrom: c\nTo: d\n\nText"
            ),
            "See below.\n---------- Forwarded message ---------\nFrom: c\nTo: d\n\nText"
        );
    }

    #[test]
    fn a_reply_quoting_500_levels_is_stripped_in_one_pass() {
        let mut text = String::from("Top reply.\n\n");
        for level in 1..=500 {
            text.push_str(&"> ".repeat(level));
            text.push_str(&format!("On day {level}, someone wrote:\n"));
        }
        for level in (1..=500).rev() {
            text.push_str(&"> ".repeat(level));
            text.push_str("text\n");
        }
        let started = std::time::Instant::now();
        assert_eq!(strip_reply(&text), "Top reply.");
        // Alternating attributions and quotes, the worst case for the loop.
        let alternating = "On x wrote:\n> q\n".repeat(5_000);
        assert_eq!(strip_reply(&format!("Reply\n{alternating}")), "Reply");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn stripping_twice_changes_nothing_on_the_fixtures() {
        for raw in fixtures::ALL {
            let m = parse(raw.as_bytes()).unwrap();
            let once = strip_reply(&m.body);
            assert_eq!(strip_reply(&once), once);
        }
    }

    const PIECES: &[&str] = &[
        "Thanks",
        "> quoted",
        ">",
        "> > deeper",
        "On Mon, Dana wrote:",
        "On Mon, Dana <",
        "d@example.com> wrote:",
        "x@y wrote:",
        "-- ",
        "--",
        "  -- ",
        "---",
        "",
        " ",
        "\t",
        "________________________________",
        "From: Helpdesk",
        "Sent: Monday",
        "Date: now",
        "-----Original Message-----",
        "Am Montag schrieb Dana:",
        "text with trailing  ",
        "\r",
        "é ünïcödé",
    ];

    proptest::proptest! {
        #![proptest_config(crate::mail::proptest_config())]

        #[test]
        fn stripping_is_idempotent(
            picks in proptest::collection::vec(0usize..PIECES.len(), 0..40),
            crlf in proptest::prelude::any::<bool>(),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let text: String = picks.iter().map(|&i| format!("{}{end}", PIECES[i])).collect();
            let once = strip_reply(&text);
            proptest::prop_assert_eq!(strip_reply(&once), once.clone());
            proptest::prop_assert!(!once.contains('\r'));
            proptest::prop_assert_eq!(once.trim_end(), once.as_str());
        }

        #[test]
        fn stripping_any_text_is_idempotent(text in "\\PC{0,300}") {
            let once = strip_reply(&text);
            proptest::prop_assert_eq!(strip_reply(&once), once);
        }
    }
}
