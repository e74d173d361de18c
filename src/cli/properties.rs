//! Property tests (proptest) over what the command line takes: enum values
//! in the documented spellings (SPEC §1's table) and durations. Each
//! property runs `PROPTEST_CASES` cases (64 by default).

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::cli::{Cli, Command, NotifyCommand, TicketCommand, parse_duration};
use crate::model::{Channel, NotificationStatus, Priority, Purpose, Status};

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

// ---- enum values and durations on the command line ------------------------------------------

/// Valid spellings in random case, with junk around them, or anything at all.
fn spelling(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(words),
            prop::collection::vec(any::<bool>(), 16)
        )
            .prop_map(|(word, upper)| {
                word.chars()
                    .zip(upper)
                    .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect()
            }),
        (prop::sample::select(words), "\\PC{0,2}", "\\PC{0,2}")
            .prop_map(|(word, a, b)| format!("{a}{word}{b}")),
        "\\PC{0,12}",
        "[a-z_-]{1,12}",
    ]
}

const PRIORITY_WORDS: &[&str] = &["low", "medium", "med", "high", "urgent", "urge"];
const PURPOSE_WORDS: &[&str] = &["app", "company", "comp"];
const STATUS_WORDS: &[&str] = &[
    "ready",
    "read",
    "in_progress",
    "in-progress",
    "prog",
    "done",
];
const STATE_WORDS: &[&str] = &["pending", "processing", "sent", "errored", "failed"];
const CHANNEL_WORDS: &[&str] = &["app", "email"];

/// The value a spelling stands for, case-insensitively (ASCII only), if any.
fn expected<T: Copy>(input: &str, table: &[(&str, T)]) -> Option<T> {
    let lower = input.to_ascii_lowercase();
    table
        .iter()
        .find(|(word, _)| *word == lower)
        .map(|(_, v)| *v)
}

/// A refused value is wrong usage (status 2) that lists the accepted values.
fn check_refusal(err: &clap::Error, accepted: &[&str]) -> Result<(), TestCaseError> {
    prop_assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    for word in accepted {
        prop_assert!(text.contains(word), "{} not listed in\n{}", word, text);
    }
    Ok(())
}

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("helpdesk")
        .chain(list.iter().copied())
        .map(str::to_string)
        .collect()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn priority_and_status_parse_exactly_the_documented_spellings(
        priority in spelling(PRIORITY_WORDS),
        status in spelling(STATUS_WORDS),
    ) {
        let want_priority = expected(&priority, &[
            ("low", Priority::Low), ("medium", Priority::Medium), ("med", Priority::Medium),
            ("high", Priority::High), ("urgent", Priority::Urgent), ("urge", Priority::Urgent),
        ]);
        let parsed = Cli::try_parse_from(args(&["ticket", "list", &format!("--priority={priority}")]));
        match (parsed, want_priority) {
            (Ok(cli), Some(want)) => match cli.command {
                Command::Ticket(TicketCommand::List(list)) => prop_assert_eq!(list.priority, Some(want)),
                other => prop_assert!(false, "parsed as {:?}", other),
            },
            (Err(err), None) => check_refusal(&err, &["low", "medium", "high", "urgent"])?,
            (result, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", priority, result.map(|_| ()), want),
        }
        let want_status = expected(&status, &[
            ("ready", Status::Ready), ("read", Status::Ready), ("in_progress", Status::InProgress),
            ("in-progress", Status::InProgress), ("prog", Status::InProgress), ("done", Status::Done),
        ]);
        let parsed = Cli::try_parse_from(args(&["ticket", "list", &format!("--status={status}")]));
        match (parsed, want_status) {
            (Ok(cli), Some(want)) => match cli.command {
                Command::Ticket(TicketCommand::List(list)) => prop_assert_eq!(list.status, Some(want)),
                other => prop_assert!(false, "parsed as {:?}", other),
            },
            (Err(err), None) => check_refusal(&err, &["ready", "in_progress", "done"])?,
            (result, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", status, result.map(|_| ()), want),
        }
    }

    #[test]
    fn purpose_parses_exactly_the_documented_spellings(purpose in spelling(PURPOSE_WORDS)) {
        let want = expected(&purpose, &[
            ("app", Purpose::App), ("company", Purpose::Company), ("comp", Purpose::Company),
        ]);
        let parsed = Cli::try_parse_from(args(&[
            "ticket", "create", "--created-by", "ann", &format!("--purpose={purpose}"),
            "--priority", "low", "--description", "d",
        ]));
        match (parsed, want) {
            (Ok(cli), Some(want)) => match cli.command {
                Command::Ticket(TicketCommand::Create(create)) => prop_assert_eq!(create.purpose, want),
                other => prop_assert!(false, "parsed as {:?}", other),
            },
            (Err(err), None) => check_refusal(&err, &["app", "company"])?,
            (result, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", purpose, result.map(|_| ()), want),
        }
    }

    #[test]
    fn queue_filters_parse_exactly_the_documented_spellings(
        state in spelling(STATE_WORDS),
        channel in spelling(CHANNEL_WORDS),
    ) {
        let want_state = expected(&state, &[
            ("pending", NotificationStatus::Pending), ("processing", NotificationStatus::Processing),
            ("sent", NotificationStatus::Sent), ("errored", NotificationStatus::Errored),
            ("failed", NotificationStatus::Failed),
        ]);
        let want_channel = expected(&channel, &[("app", Channel::App), ("email", Channel::Email)]);
        let parsed = Cli::try_parse_from(args(&[
            "notify", "list", &format!("--status={state}"), &format!("--channel={channel}"),
        ]));
        match (parsed, want_state, want_channel) {
            (Ok(cli), Some(s), Some(c)) => match cli.command {
                Command::Notify(NotifyCommand::List(list)) => {
                    prop_assert_eq!(list.status, Some(s));
                    prop_assert_eq!(list.channel, Some(c));
                }
                other => prop_assert!(false, "parsed as {:?}", other),
            },
            (Err(err), s, c) if s.is_none() || c.is_none() => prop_assert_eq!(err.exit_code(), 2),
            (result, s, c) => prop_assert!(false, "{:?}/{:?}: got {:?}, want {:?}/{:?}", state, channel, result.map(|_| ()), s, c),
        }
    }

    /// Durations: every whole number with a unit of the grammar (`s`, `m`,
    /// `h`, `d`) reads back as that many seconds.
    #[test]
    fn durations_read_back_as_written(n in 0u64..=10_000_000, unit in prop::sample::select(&[("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400)][..])) {
        let text = format!("{n}{}", unit.0);
        let parsed = parse_duration(&text);
        prop_assert_eq!(parsed.map(|d| d.as_secs()).ok(), Some(n * unit.1), "{:?}", text);
    }

    /// Anything outside the grammar (no unit, another unit, a sign, space,
    /// a fraction, a number too large) is refused with one message, never a panic.
    #[test]
    fn durations_outside_the_grammar_are_refused(text in prop_oneof![
        "[0-9]{1,6}",
        "[0-9]{1,6}[a-ce-gi-lnoq-rt-zA-Z]",
        "[-+ ][0-9]{1,3}[smhd]",
        "[0-9]{1,3}[smhd] ",
        "[0-9]{1,3}\\.[0-9][smhd]",
        "[smhd][0-9]{0,3}",
        "[1-9][0-9]{20,21}[smhd]",
        "[0-9]{1,3}[smhd][0-9a-z]{1,3}",
    ]) {
        match parse_duration(&text) {
            Ok(d) => prop_assert!(false, "{:?} accepted as {:?}", text, d),
            Err(message) => prop_assert!(message.contains("is not a duration"), "{}", message),
        }
    }
}
