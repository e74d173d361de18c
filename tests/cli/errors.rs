//! Errors as a user reads them (STYLE "Errors", SPEC §4 "Bad input"): the
//! exact text of a few common ones, errors on stderr with stdout left empty,
//! and never a panic or a backtrace, whatever goes wrong.

use crate::support::*;

fn setup() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.user("bob", "bob@example.org");
    sb
}

#[track_caller]
fn assert_no_panic(what: &str, run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "internal error",
            "stack backtrace",
        ] {
            assert!(
                !text.contains(bad),
                "{what}: output contains {bad:?}:\n{text}"
            );
        }
    }
}

#[test]
fn an_unknown_creator_reads_as_one_error_and_a_hint() {
    let sb = setup();
    let run = sb
        .run([
            "ticket",
            "create",
            "--created-by",
            "x",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            "who am I",
        ])
        .code(1)
        .stderr_is(
            "error: no user named `x`\n\
             hint: list users with `helpdesk user list`, or add one with `helpdesk user add x --email …`",
        );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_ticket_that_does_not_exist_reads_as_one_error_and_a_hint() {
    let sb = setup();
    let run = sb.run(["ticket", "show", "42"]).code(1).stderr_is(
        "error: ticket #42 does not exist\nhint: list tickets with `helpdesk ticket list`",
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // The same with --format json: still no JSON document for an error.
    let run = sb
        .run(["ticket", "show", "42", "--format", "json"])
        .code(1)
        .stderr_is(
            "error: ticket #42 does not exist\nhint: list tickets with `helpdesk ticket list`",
        );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn reading_a_foreign_notification_reads_as_one_error_and_a_hint() {
    let sb = setup();
    let ticket = sb.ticket("bob", "high", "for the developers");
    let foreign = ticket["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["user"] == "dev2" && n["channel"] == "app")
        .expect("dev2 has an in-app notification")["id"]
        .as_i64()
        .unwrap();
    sb.run(["inbox", "read", "--user", "dev", &foreign.to_string()])
        .code(1)
        .stderr_is(&format!(
            "error: no notification {foreign} in the inbox of `dev`; nothing was marked\n\
             hint: see the IDs with `helpdesk inbox --user dev`"
        ));
}

#[test]
fn bad_text_reads_as_one_line_naming_the_problem() {
    let sb = setup();
    let create = |description: &str| {
        sb.run([
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            description,
        ])
    };
    create("   ")
        .code(1)
        .stderr_is("error: the description is blank");
    sb.run(["user", "add", "a b", "--email", "ab@example.org"])
        .code(1)
        .stderr_is("error: invalid username `a b`: use 1 to 150 letters, digits and @ . + - _");
    sb.run(["user", "add", "bob", "--email", "bob2@example.org"])
        .code(1)
        .stderr_is("error: a user named `bob` already exists");
    sb.run(["user", "add", "robert", "--email", "BOB@example.org"])
        .code(1)
        .stderr_is("error: the address `BOB@example.org` already belongs to user `bob`");
}

#[test]
fn a_damaged_database_is_named_and_left_untouched() {
    if crate::support::sqlite_only() {
        return;
    }
    let sb = Sandbox::new();
    let junk = "this is not a SQLite database, only some text that is long enough\n".repeat(20);
    std::fs::write(sb.db(), &junk).unwrap();
    let run = sb.run(["user", "list"]).code(1).stderr_has("helpdesk.db");
    assert_no_panic("damaged database", &run);
    assert_eq!(std::fs::read_to_string(sb.db()).unwrap(), junk);
}

#[test]
fn no_error_panics_or_prints_a_backtrace() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let sb = setup();
    sb.ticket("bob", "high", "one ticket");
    let foreign = "2".to_string();
    let cases: Vec<(Vec<OsString>, i32)> = vec![
        (args(&["ticket", "show", "42"]), 1),
        (args(&["ticket", "show", "abc"]), 2),
        (args(&["ticket", "show", "99999999999999999999999"]), 2),
        (args(&["ticket", "show", "-1"]), 2),
        (args(&["ticket", "show", "--", "-1"]), 1),
        (
            args(&[
                "ticket",
                "create",
                "--created-by",
                "nobody",
                "--purpose",
                "app",
                "--priority",
                "high",
                "--description",
                "x",
            ]),
            1,
        ),
        (
            args(&[
                "ticket",
                "create",
                "--created-by",
                "bob",
                "--purpose",
                "app",
                "--priority",
                "critical",
                "--description",
                "x",
            ]),
            2,
        ),
        (
            {
                let mut a = args(&[
                    "ticket",
                    "create",
                    "--created-by",
                    "bob",
                    "--purpose",
                    "app",
                    "--priority",
                    "high",
                    "--description",
                ]);
                a.push(OsString::from_vec(b"\xff\xfe".to_vec()));
                a
            },
            1,
        ),
        (args(&["inbox", "read", "--user", "dev", &foreign]), 1),
        (args(&["inbox", "read", "--user", "dev", "--", "-5"]), 1),
        (args(&["inbox", "--user", "nobody"]), 1),
        (args(&["inbox", "--user", "dev", "--limit", "0"]), 2),
        (
            args(&["user", "add", "x y", "--email", "xy@example.org"]),
            1,
        ),
        (args(&["user", "add", "xy", "--email", "nope"]), 1),
        (args(&["user", "grant", "bob", "root"]), 2),
        (args(&["group", "add-user", "nogroup", "bob"]), 1),
        (args(&["--config", "missing.toml", "user", "list"]), 1),
        (args(&["--db", "/dev/null/x.db", "user", "list"]), 1),
        (args(&["notify", "show", "999"]), 1),
        (args(&["no-such-command"]), 2),
    ];
    for (argv, code) in cases {
        let what = format!("{argv:?}");
        let run = sb.run_env(&argv, &[("RUST_BACKTRACE", "1")]);
        assert_no_panic(&what, &run);
        assert_eq!(run.code, code, "{what}\n{}", run.stderr);
        assert!(run.stderr.starts_with("error:"), "{what}:\n{}", run.stderr);
    }
    // Input that is too large or not UTF-8 on standard input.
    for input in [vec![b'a'; 1_048_577], b"\xc3\x28 broken".to_vec()] {
        let run = sb.run_stdin(
            [
                "ticket",
                "create",
                "--created-by",
                "bob",
                "--purpose",
                "app",
                "--priority",
                "high",
                "--description",
                "-",
            ],
            &input,
        );
        assert_no_panic("stdin", &run);
        assert_eq!(run.code, 1, "{}", run.stderr);
    }
    // Configuration errors.
    for config in [
        "debug = true\n",
        "hots = 1\n",
        "[email.smtp]\npassword = \"hunter2\"\n",
        "database = [\n",
        "admins = \"dev@example.org\"\n",
        "[queue]\nbatch_size = -1\n",
    ] {
        sb.write_config(config);
        let run = sb.run_env(["user", "list"], &[("RUST_BACKTRACE", "1")]);
        assert_no_panic(config, &run);
        assert_eq!(run.code, 1, "{config}\n{}", run.stderr);
        assert!(
            run.stderr.starts_with("error:"),
            "{config}:\n{}",
            run.stderr
        );
    }
}

fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
    list.iter().map(std::ffi::OsString::from).collect()
}

/// Runs the command with its stdout closed before it writes (`| head` that
/// already quit); returns its stderr and exit status.
fn with_closed_stdout(sb: &Sandbox, argv: &[&str]) -> Run {
    let mut cmd = sb.command();
    cmd.args(argv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the helpdesk binary runs");
    drop(child.stdout.take());
    Run::from(
        child
            .wait_with_output()
            .expect("the helpdesk binary finishes"),
    )
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let sb = setup();
    for i in 0..3 {
        sb.ticket("bob", "high", &format!("ticket {i}"));
    }
    for argv in [
        &["ticket", "list"][..],
        &["inbox", "--user", "dev", "--format", "json"],
        &["completions", "bash"],
    ] {
        let run = with_closed_stdout(&sb, argv);
        assert_no_panic(&format!("{argv:?} | (closed)"), &run);
    }
}
