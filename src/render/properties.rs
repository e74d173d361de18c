//! Property tests (proptest) over rendering ticket text into an email: user
//! text is escaped in HTML, never runs as template code, never adds a header
//! or a part, and the built message is safe on the wire. Each property runs
//! `PROPTEST_CASES` cases (64 by default). proptest's failure files are off:
//! a failing input it finds is kept as a plain `#[test]` at the end.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::config::Site;
use crate::model::{EventKind, Priority, Purpose, Status, TicketId};
use crate::notify::content::{self, EmailContent};
use crate::notify::event::{Change, EventData};
use crate::notify::message::{self, Addressing, Prepared};
use crate::render::Renderer;

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- rendering -------------------------------------------------------------------------------

/// Markers around each piece of user text, to find it in the rendered HTML.
/// (Private-use characters: `\PC` never generates them.)
const MARKS: [(char, char); 3] = [
    ('\u{E000}', '\u{E001}'),
    ('\u{E002}', '\u{E003}'),
    ('\u{E004}', '\u{E005}'),
];

/// User text: printable runs mixed with markup, template syntax, line breaks,
/// control and bidirectional characters, sometimes long; half the time pure
/// ASCII (lettre picks a message's transfer encoding by whether it is).
fn user_text() -> impl Strategy<Value = String> {
    let ascii = prop_oneof![
        6 => "[ -~]{0,12}",
        1 => Just("<script>".to_string()),
        1 => Just("{{ 12345*3 }}".to_string()),
        1 => Just("{% for i in range(3) %}".to_string()),
        2 => Just("\n".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just("\r".to_string()),
        1 => Just(".".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\0".to_string()),
        1 => Just("\u{1b}[2J".to_string()),
        1 => "[a-z]{990,1100}",
    ];
    let ascii = prop::collection::vec(ascii, 0..24).prop_map(|tokens| tokens.concat());
    prop_oneof![ascii, any_text()]
}

fn any_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => "\\PC{0,12}",
        4 => "[ -~]{0,12}",
        1 => Just("<".to_string()),
        1 => Just(">".to_string()),
        1 => Just("&".to_string()),
        1 => Just("\"".to_string()),
        1 => Just("'".to_string()),
        1 => Just("/".to_string()),
        1 => Just("{{".to_string()),
        1 => Just("}}".to_string()),
        1 => Just("{% for i in range(3) %}".to_string()),
        1 => Just("{% endfor %}".to_string()),
        1 => Just("{# x #}".to_string()),
        1 => Just("<script>".to_string()),
        1 => Just("&amp;".to_string()),
        1 => Just("&#x27;".to_string()),
        1 => Just("<br>".to_string()),
        2 => Just("\n".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just("\r".to_string()),
        1 => Just(".".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\u{1b}[2J".to_string()),
        1 => Just("\u{202E}".to_string()),
        1 => Just("Bcc: x@evil.test".to_string()),
        1 => Just("--".to_string()),
        1 => "[a-z]{990,1100}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop::sample::select(EventKind::ALL)
}

fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| Renderer::new(None).expect("the built-in templates compile"))
}

fn marked(text: &str, (open, close): (char, char)) -> String {
    format!("{open}{text}{close}")
}

fn event_data(description: &str, comment: &str) -> EventData {
    EventData {
        purpose: Purpose::App,
        priority: Priority::High,
        status: Status::InProgress,
        description: marked(description, MARKS[0]),
        changes: vec![Change {
            field: "Status".into(),
            from: "Ready".into(),
            to: "In Progress".into(),
        }],
        comment: Some(marked(comment, MARKS[1])),
        assignment: None,
        actor_name: None,
        opened_by: None,
    }
}

/// The email for an event with this text, as a flush renders it (no marks:
/// pure ASCII text must stay pure ASCII, lettre picks the encoding by it).
fn render_plain(kind: EventKind, description: &str, comment: &str) -> EmailContent {
    let data = EventData {
        description: description.to_string(),
        comment: Some(comment.to_string()),
        ..event_data("", "")
    };
    content::email(
        renderer(),
        &Site::default(),
        kind,
        TicketId(7),
        &data,
        "ann",
        false,
        content::UNKNOWN_REASON,
    )
    .expect("every event renders")
}

fn render(kind: EventKind, description: &str, comment: &str, actor: &str) -> EmailContent {
    content::email(
        renderer(),
        &Site::default(),
        kind,
        TicketId(7),
        &event_data(description, comment),
        &marked(actor, MARKS[2]),
        false,
        content::UNKNOWN_REASON,
    )
    .expect("every event renders")
}

/// Undoes the HTML escaping the templates apply; `None` on anything that is not
/// one of the entities they write (which would mean raw markup got through).
fn unescape(segment: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = segment;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (entity, plain) = [
            ("&amp;", "&"),
            ("&lt;", "<"),
            ("&gt;", ">"),
            ("&quot;", "\""),
            ("&#x27;", "'"),
            ("&#x2f;", "/"),
            ("<br>\n", "\n"),
        ]
        .into_iter()
        .find(|(entity, _)| rest.starts_with(entity))?;
        out.push_str(plain);
        rest = &rest[entity.len()..];
    }
    out.push_str(rest);
    Some(out)
}

/// Every stretch of `html` between the marks, however often the template shows it.
fn segments(html: &str, (open, close): (char, char)) -> Vec<&str> {
    html.split(open)
        .skip(1)
        .map(|s| s.split(close).next().unwrap_or_default())
        .collect()
}

/// What `linebreaksbr` keeps of a marked text (each line without its trailing
/// CRs), without the marks.
fn as_lines(text: &str, marks: (char, char)) -> String {
    let kept = marked(text, marks)
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .collect::<Vec<_>>()
        .join("\n");
    kept.trim_start_matches(marks.0)
        .trim_end_matches(marks.1)
        .to_string()
}

/// The top-level header names of a built message, in order.
fn header_names(raw: &str) -> Vec<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap_or_default().to_ascii_lowercase())
        .collect()
}

fn build(content: &EmailContent) -> String {
    let out = message::build(
        &Addressing {
            key: 1,
            from: &"Helpdesk <helpdesk@example.org>".parse().expect("a From"),
            to: "dev@example.org",
            message_id: Some("<1.2.3@example.com>"),
            ticket_id: Some(crate::model::TicketId(7)),
        },
        &Prepared::new(content),
    )
    .expect("the message builds");
    String::from_utf8(out.raw).expect("built messages are UTF-8")
}

/// Where a message is not what SMTP may carry: a bare CR or LF, a NUL, or a
/// line over RFC 5322's 998 octets.
fn wire_problem(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            return Some(format!("a bare LF at byte {i}"));
        }
        if b == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
            return Some(format!("a bare CR at byte {i}"));
        }
        if b == 0 {
            return Some(format!("a NUL at byte {i}"));
        }
    }
    raw.split("\r\n")
        .map(str::len)
        .find(|&n| n > 998)
        .map(|n| format!("a line of {n} octets"))
}

proptest! {
    #![proptest_config(cases())]

    /// The HTML part carries each piece of user text escaped (no `<` of the
    /// user's survives, other than the `<br>` for its line breaks), whole, and
    /// never evaluated as a template; the text part carries it verbatim; the
    /// subject is the fixed subject.
    #[test]
    fn html_escapes_user_text_and_never_runs_it(
        kind in kind(), description in user_text(), comment in user_text(), actor in user_text(),
    ) {
        let mail = render(kind, &description, &comment, &actor);
        prop_assert_eq!(&mail.subject, &content::subject(kind, TicketId(7), &event_data("", "")));
        // The actor is escaped as one value; description and comment also get `<br>`.
        let mut pieces = vec![(MARKS[2], actor.clone(), "actor")];
        match kind {
            EventKind::New | EventKind::Update | EventKind::Assign => pieces.push((MARKS[0], as_lines(&description, MARKS[0]), "description")),
            EventKind::Comment => pieces.push((MARKS[1], as_lines(&comment, MARKS[1]), "comment")),
        }
        for (marks, want, what) in pieces {
            let found = segments(&mail.html, marks);
            prop_assert!(!found.is_empty(), "the {} is missing from\n{}", what, mail.html);
            for segment in found {
                let plain = unescape(segment);
                prop_assert!(plain.is_some(), "raw markup in the {}: {:?}", what, segment);
                prop_assert_eq!(plain.unwrap(), want.clone(), "the {} changed", what);
            }
        }
        let text_piece = match kind {
            EventKind::Comment => marked(&comment, MARKS[1]),
            _ => marked(&description, MARKS[0]),
        };
        prop_assert!(mail.text.contains(&text_piece), "the text part lacks the user text verbatim");
    }

    /// Whatever the user text, the built message has exactly the headers of a
    /// plain one (nothing gains a line), and one text and one HTML part.
    #[test]
    fn user_text_never_adds_a_header_or_a_part(
        kind in kind(), description in user_text(), comment in user_text(),
    ) {
        let baseline = header_names(&build(&render_plain(kind, "plain", "plain")));
        let raw = build(&render_plain(kind, &description, &comment));
        prop_assert_eq!(header_names(&raw), baseline);
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
        prop_assert!(parsed.is_some(), "the message does not parse");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.text_body.len(), 1);
        prop_assert_eq!(parsed.html_body.len(), 1);
        prop_assert_eq!(parsed.parts.len(), 3, "a multipart with two parts");
        prop_assert!(parsed.header("Bcc").is_none());
    }

    /// What goes to the SMTP server is well-formed: CRLF line ends only, no
    /// NUL, no line over 998 octets, whatever the user wrote.
    #[test]
    fn built_messages_are_wire_safe(
        kind in kind(), description in user_text(), comment in user_text(),
    ) {
        let raw = build(&render_plain(kind, &description, &comment));
        let problem = wire_problem(&raw);
        prop_assert!(problem.is_none(), "{}", problem.unwrap_or_default());
    }
}

// ---- failing inputs found, kept as regression tests ------------------------------------------

/// Found by `built_messages_are_wire_safe` (minimal input: a comment `"\r0"`):
/// a CR not followed by LF in pure-ASCII text goes out as a bare CR inside a
/// `7bit` text part. RFC 5321 §2.3.8 forbids bare CR; a server that ends lines
/// at one reads `\r.\r` as the end of DATA (SMTP smuggling).
#[test]
fn regression_a_bare_cr_in_user_text_is_not_sent_bare() {
    for text in ["\r0", "a\rb", "x\r.\r\nMAIL FROM:<evil@evil.test>"] {
        for kind in EventKind::ALL {
            let raw = build(&render_plain(*kind, text, text));
            assert_eq!(wire_problem(&raw), None, "{kind:?} {text:?}");
        }
    }
}
