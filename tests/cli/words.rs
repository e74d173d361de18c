//! Words, not internals (SPEC §5), on the configuration side: each message
//! says what was expected or what happened, names the file, line, column
//! and key, and shows a bad value made safe for the terminal.

use crate::support::*;

fn config_path(sb: &Sandbox) -> String {
    sb.path("helpdesk.toml").display().to_string()
}

#[test]
fn a_port_that_is_not_a_number_in_range_says_so() {
    let sb = Sandbox::empty();
    for value in ["\"2525\"", "99999", "0", "-25", "25.0"] {
        sb.write_config(&BASE_CONFIG.replace("port = {port}", &format!("port = {value}")));
        let expected = format!(
            "error: `{}` line 7, column 8, key `email.smtp.port`: port must be a number from 1 to 65535",
            config_path(&sb)
        );
        sb.run(["user", "list"]).code(1).stderr_is(&expected);
        sb.run(["config", "check"]).code(1).stderr_is(&expected);
    }
    // The other numbers too: no Rust type in the message.
    sb.write_config(&format!("{BASE_CONFIG}\n[queue]\nbatch_size = \"ten\"\n"));
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: `{}` line 11, column 14, key `queue.batch_size`: batch_size must be a number from 1 to 1000000",
        config_path(&sb)
    ));
}

#[test]
fn a_folder_named_as_the_configuration_or_the_database_says_so() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("conf")).unwrap();
    let folder = sb.path("conf");
    let expected = format!(
        "error: configuration file `{0}` is a folder: name the file itself, such as `{0}/helpdesk.toml`",
        folder.display()
    );
    sb.run(["--config", "conf", "user", "list"])
        .code(1)
        .stderr_is(&expected);
    sb.run_env(["user", "list"], &[("HELPDESK_CONFIG", "conf")])
        .code(1)
        .stderr_is(&expected);
    let expected = format!(
        "error: database `{}` is a folder, not a database file\n\
         hint: name the database file itself with `--db` or `database` in the configuration",
        folder.display()
    );
    sb.run(["--db", "conf", "user", "list"])
        .code(1)
        .stderr_is(&expected);
    sb.run_env(["ticket", "list"], &[("HELPDESK_DB", "conf")])
        .code(1)
        .stderr_is(&expected);
    sb.run(["--db", "conf", "init"])
        .code(1)
        .stderr_is(&expected);
}

#[test]
fn a_list_where_one_address_belongs_says_it_is_not_one_address() {
    let sb = Sandbox::empty();
    let path = config_path(&sb);
    let smtp = "[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n";
    for (line, key) in [
        (
            "admins = [[\"Zed\", \"zed@example.org, x@y.org\"]]",
            "admins",
        ),
        (
            "default_from_email = \"zed@example.org, x@y.org\"",
            "default_from_email",
        ),
        (
            "development_email = \"zed@example.org, x@y.org\"",
            "development_email",
        ),
    ] {
        sb.write_config(&format!("{line}\n{smtp}"));
        sb.run(["config", "check"]).code(1).stderr_is(&format!(
            "error: `{path}`: `{key}` has an invalid email address `zed@example.org, x@y.org`: it is a list of addresses, not one address: give one"
        ));
    }
}

#[test]
fn addresses_the_sender_cannot_use_are_refused_where_they_enter() {
    let sb = Sandbox::empty();
    let path = config_path(&sb);
    let smtp = "[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n";
    for (line, value, reason) in [
        (
            "debug = true\ndevelopment_email = \"dev@[127.0.0.1]\"",
            "dev@[127.0.0.1]",
            "an address literal (`@[…]`) cannot be sent to: use a domain name",
        ),
        (
            "admins = [[\"Q\", '\"a b\"@example.org']]",
            "\"a b\"@example.org",
            "a quoted local part (`\"…\"@`) cannot be sent to",
        ),
    ] {
        sb.write_config(&format!("{line}\n{smtp}"));
        let key = if line.contains("admins") {
            "admins"
        } else {
            "development_email"
        };
        sb.run(["config", "check"]).code(1).stderr_is(&format!(
            "error: `{path}`: `{key}` has an invalid email address `{value}`: {reason}"
        ));
    }
    // A From line longer than a header line may be.
    let name = "N".repeat(1_800);
    sb.write_config(&format!(
        "default_from_email = \"{name} <help@example.org>\"\n{smtp}"
    ));
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: `{path}`: `default_from_email` has an invalid email address `{}…`: the `From` line would be 1825 characters long, and a mail header line holds at most 998: shorten the name",
        "N".repeat(200)
    ));
    // A non-ASCII local part only reaches SMTPUTF8 servers: a warning.
    sb.write_config(&format!("admins = [[\"Ü\", \"ünï@example.org\"]]\n{smtp}"));
    sb.run(["init"]).success();
    sb.run(["config", "check"]).success().stderr_has(
        "warning: `admins` has the address `ünï@example.org`, whose part before the `@` is not ASCII: only mail servers that support SMTPUTF8 accept it",
    );
}

#[test]
fn control_characters_in_a_bad_value_are_not_printed_raw() {
    let sb = Sandbox::empty();
    let path = config_path(&sb);
    let smtp = "[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n";
    sb.write_config(&format!(
        "[site]\nscheme = \"\\u001b[31mgopher\\u0007\\r\"\n{smtp}"
    ));
    let run = sb.run(["config", "check"]).code(1);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: `{path}`: `site.scheme` must be `http` or `https`, not `\u{FFFD}[31mgopher\u{FFFD} `"
        )
    );
    // An unknown value toml repeats, and HELPDESK_DEBUG.
    sb.write_config(&format!(
        "[email]\ntransport = \"smtp\\u001b]0;owned\\u0007\"\n{smtp}"
    ));
    let run = sb.run(["config", "check"]).code(1);
    assert!(
        !run.stderr.contains(['\u{1b}', '\u{7}', '\r']),
        "{:?}",
        run.stderr
    );
    sb.write_config(smtp);
    let run = sb
        .run_env(["config", "check"], &[("HELPDESK_DEBUG", "\u{1b}[2J\n")])
        .code(1);
    assert_eq!(
        run.stderr.trim_end(),
        "error: HELPDESK_DEBUG must be `true`, `false`, `1` or `0`, not `\u{FFFD}[2J `\ncaused by:\n  not a boolean"
    );
}

#[test]
fn user_add_refuses_what_the_sender_could_never_send_to() {
    let sb = Sandbox::new();
    for (email, reason) in [
        (
            "zed@example.org, x@y.org",
            "it is a list of addresses, not one address: give one",
        ),
        (
            "\"a b\"@example.org",
            "a quoted local part (`\"…\"@`) cannot be sent to",
        ),
        (
            "a@[127.0.0.1]",
            "an address literal (`@[…]`) cannot be sent to: use a domain name",
        ),
        ("nobody", "it has no `@`: write it as name@example.org"),
    ] {
        sb.run(["user", "add", "q", "--email", email])
            .code(1)
            .stderr_is(&format!(
                "error: `--email` has an invalid email address `{email}`: {reason}"
            ));
    }
    sb.run([
        "user",
        "add",
        "q",
        "--email",
        "a@b",
        "--name",
        "A\r\nBcc: x@evil.test",
    ])
    .code(1)
    .stderr_is("error: `--name` contains a line break, which would break a mail header");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM users"), 0);
    // A non-ASCII address is taken: it goes out through an SMTPUTF8 server.
    sb.user("u", "ünï@exämple.org");
}
