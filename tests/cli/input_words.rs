//! One wording for an address or a name typed as input, whichever path it
//! enters by (`address::parse_input`): the field is named, nothing is
//! written, status 1.

use crate::support::*;

#[test]
fn every_input_path_refuses_an_address_in_the_same_words() {
    let sb = Sandbox::new();
    sb.run([
        "user",
        "add",
        "q",
        "--email",
        "a@example.org\nBcc: x@evil.test",
    ])
    .code(1)
    .stderr_is("error: `--email` contains a line break, which would break a mail header");
    sb.run([
        "notify",
        "test",
        "--to",
        "a@example.org\r\nBcc: x@evil.test",
    ])
    .code(1)
    .stderr_is("error: `--to` contains a line break, which would break a mail header");
    sb.run(["notify", "test", "--to", "nobody"])
        .code(1)
        .stderr_is(
            "error: `--to` has an invalid email address `nobody`: it has no `@`: write it as name@example.org",
        );
    sb.run(["user", "add", "q", "--email", "nobody"])
        .code(1)
        .stderr_is(
            "error: `--email` has an invalid email address `nobody`: it has no `@`: write it as name@example.org",
        );
    sb.run([
        "user",
        "add",
        "q",
        "--email",
        "q@example.org",
        "--name",
        &"n".repeat(151),
    ])
    .code(1)
    .stderr_is("error: `--name` must be at most 150 characters, without control characters");
    sb.run(["group", "add", "a\u{7}b"])
        .code(1)
        .stderr_is("error: the group name must be 1 to 150 characters, without control characters");
    sb.run(["group", "add", "ops\n"])
        .code(1)
        .stderr_is("error: the group name contains a line break, which would break a mail header");
    sb.run(["group", "add", " ops"])
        .code(1)
        .stderr_is("error: the group name ` ops` has spaces around it: write it without them");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM users"), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM groups"), 0);
}

#[test]
fn the_configuration_refuses_an_address_in_the_same_words() {
    let sb = Sandbox::empty();
    let path = sb.path("helpdesk.toml").display().to_string();
    let smtp = "[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n";
    sb.write_config(&format!(
        "[email.inbound]\naddress = \"help@example.org\\nBcc: x@evil.test\"\n{smtp}"
    ));
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: `{path}`: `email.inbound.address` contains a line break, which would break a mail header"
    ));
    sb.write_config(&format!("admins = [[\"Ann\", \"nobody\"]]\n{smtp}"));
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: `{path}`: `admins` has an invalid email address `nobody`: it has no `@`: write it as name@example.org"
    ));
}

#[test]
fn an_address_is_taken_as_written_on_the_command_line_as_in_the_configuration() {
    let sb = Sandbox::new();
    for (args, field) in [
        (
            vec!["user", "add", "q", "--email", "q@example.org\n"],
            "--email",
        ),
        (vec!["notify", "test", "--to", "q@example.org\r"], "--to"),
    ] {
        sb.run(&args).code(1).stderr_is(&format!(
            "error: `{field}` contains a line break, which would break a mail header"
        ));
    }
    sb.run(["user", "add", "q", "--email", " q@example.org"])
        .code(1)
        .stderr_is("error: `--email` has an invalid email address ` q@example.org`: it has spaces around it");
    sb.run(["notify", "test", "--to", "q@example.org "])
        .code(1)
        .stderr_is(
            "error: `--to` has an invalid email address `q@example.org `: it has spaces around it",
        );
    assert_eq!(sb.sql_i64("SELECT count(*) FROM users"), 0);
    assert!(sb.smtp.received().is_empty());
}
