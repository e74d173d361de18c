//! Property tests (proptest) over the configuration loader: random and
//! hostile file text, and the `HELPDESK_DEBUG` grammar. Each property runs
//! `PROPTEST_CASES` cases (64 by default); dig deeper with
//! `PROPTEST_CASES=5000 cargo test --release --bin helpdesk properties`.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::config::{Config, FILE_NAME, Overrides};

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

// ---- configuration text ------------------------------------------------------------------

const TABLES: &[&str] = &[
    "[email]",
    "[email.smtp]",
    "[email.file]",
    "[email.sendmail]",
    "[queue]",
    "[site]",
    "[[admins]]",
    "[bogus]",
    "[email.smtp.password]",
    "[email",
    "[[",
];

const KEYS: &[&str] = &[
    "debug",
    "database",
    "admins",
    "default_from_email",
    "development_email",
    "templates_dir",
    "site",
    "email",
    "queue",
    "transport",
    "smtp",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "password_file",
    "timeout_secs",
    "ca_file",
    "batch_size",
    "max_attempts",
    "retry_backoff_secs",
    "lease_secs",
    "domain",
    "scheme",
    "dir",
    "command",
    "name",
    "email.smtp.host",
    "hots",
    "\"quoted key\"",
    "ünïcode",
];

/// A TOML-ish value: valid scalars and arrays, and garbage that cannot open a
/// multi-line string (which could swallow the password line into another value).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9@.<>:/ _-]{0,24}".prop_map(|s| format!("\"{s}\"")),
        "[^\n\"'\\\\]{0,16}".prop_map(|s| format!("\"{s}\"")),
        "[^\n']{0,16}".prop_map(|s| format!("'{s}'")),
        "[^\n\"']{0,16}",
        Just("[[\"Ann\", \"ann@example.org\"]]".to_string()),
        Just("[{ name = \"Bo\", email = \"bo@example.org\", nmae = 1 }]".to_string()),
        Just("{ host = \"127.0.0.1\", port = 25 }".to_string()),
        Just("\"a@example.org\\r\\nBcc: x@evil.test\"".to_string()),
        Just("[1, \"two\", { three = 3 }]".to_string()),
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::sample::select(KEYS), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => prop::sample::select(TABLES).prop_map(str::to_string),
        1 => "[^\n\"']{0,30}",
        1 => Just(String::new()),
        1 => "#[^\n]{0,20}",
    ]
}

/// How a `password` key (with `{secret}` as its value) can be written.
const PASSWORD_FORMS: &[&str] = &[
    "password = \"{secret}\"",
    "\"password\" = \"{secret}\"",
    "'password' = \"{secret}\"",
    "password='{secret}'",
    "password = {secret}",
    "password = \"{secret}",
    "password = \"{secret}\" trailing",
    "password = [\"{secret}\", 1]",
    "password = { value = \"{secret}\" }",
    "password = '''{secret}'''",
    "password = \"\"\"{secret}\"\"\"",
    "email.smtp.password = \"{secret}\"",
    "smtp = { host = \"x\", password = \"{secret}\" }",
    "admins = [{ name = \"A\", email = \"a@example.org\", password = \"{secret}\" }]",
    "admins = [[\"A\", \"a@example.org\", \"{secret}\"]]",
    "[email.smtp.password]\nvalue = \"{secret}\"",
    "password = \"{secret}\"\npassword = \"{secret}\"",
];

/// A configuration file: random lines with one password line somewhere.
fn config_text() -> impl Strategy<Value = (String, String)> {
    (
        prop::collection::vec(line(), 0..12),
        prop::sample::select(PASSWORD_FORMS),
        "[A-Za-z0-9]{12}",
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut lines, form, secret, at)| {
            let secret = format!("Zq{secret}");
            let position = at.index(lines.len() + 1);
            lines.insert(position, form.replace("{secret}", &secret));
            (lines.join("\n") + "\n", secret)
        })
}

/// Loads `text` as the configuration file, in a fresh folder.
fn load(dir: &Path, text: &str, env: &HashMap<String, String>) -> anyhow::Result<Config> {
    let path = dir.join(FILE_NAME);
    std::fs::write(&path, text).expect("write the configuration");
    Config::load(
        &Overrides {
            config: Some(path),
            db: None,
        },
        env,
        dir,
    )
}

proptest! {
    #![proptest_config(cases())]

    /// Random configuration text never panics; an error names the file and
    /// never repeats the value of a `password` key.
    #[test]
    fn config_errors_never_panic_or_repeat_a_password((text, secret) in config_text()) {
        let dir = tempfile::tempdir().unwrap();
        match load(dir.path(), &text, &HashMap::new()) {
            Ok(config) => {
                let shown = format!("{config:?}");
                prop_assert!(!shown.contains(&secret), "{}", text);
            }
            Err(err) => {
                for shown in [format!("{err:#}"), format!("{err:?}")] {
                    prop_assert!(!shown.contains(&secret), "{}\n--- shows the password:\n{}", text, shown);
                    prop_assert!(shown.contains(FILE_NAME), "{}\n--- does not name the file:\n{}", text, shown);
                }
            }
        }
    }

    /// Arbitrary text (any characters, any length) never panics the loader.
    #[test]
    fn any_text_as_configuration_never_panics(text in "\\PC{0,200}|[\\x00-\\x7f]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let _ = load(dir.path(), &text, &HashMap::new());
    }

    /// `HELPDESK_DEBUG`: every spelling of the grammar (`true`, `false`, `1`,
    /// `0`, in any case, with space around) reads back as the value it spells.
    #[test]
    fn helpdesk_debug_reads_back_every_spelling(
        value in any::<bool>(),
        digit in any::<bool>(),
        upper in prop::collection::vec(any::<bool>(), 5),
        before in "[ \t]{0,2}",
        after in "[ \t]{0,2}",
    ) {
        let word = match (value, digit) {
            (true, true) => "1",
            (false, true) => "0",
            (true, false) => "true",
            (false, false) => "false",
        };
        let word: String = word
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let spelled = format!("{before}{word}{after}");
        let dir = tempfile::tempdir().unwrap();
        let env = HashMap::from([("HELPDESK_DEBUG".to_string(), spelled.clone())]);
        let config = load(dir.path(), "development_email = \"dev@example.org\"\n", &env);
        prop_assert_eq!(config.map(|c| c.debug).ok(), Some(value), "{:?}", spelled);
    }

    /// Anything outside that grammar is refused, naming the variable: text
    /// with a character no spelling has, or a near miss.
    #[test]
    fn helpdesk_debug_refuses_anything_else(
        value in prop_oneof![
            "\\PC{0,6}[^tTrRuUeEfFaAlLsS01 \t]\\PC{0,6}",
            prop::sample::select(&["yes", "no", "on", "off", "tru", "fals", "10", "2", "-1", "true false", "t"][..]).prop_map(str::to_string),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let env = HashMap::from([("HELPDESK_DEBUG".to_string(), value.clone())]);
        match load(dir.path(), "development_email = \"dev@example.org\"\n", &env) {
            Ok(config) => prop_assert!(false, "{:?} accepted as {}", value, config.debug),
            Err(err) => {
                let message = format!("{err:#}");
                prop_assert!(message.starts_with("HELPDESK_DEBUG must be `true`, `false`, `1` or `0`, not `"), "{}", message);
            }
        }
    }
}
