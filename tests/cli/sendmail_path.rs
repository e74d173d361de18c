//! The sendmail program is found once, by `transport::from_config`, on the
//! `PATH` the command was started with: every command that would run it
//! says the same words when it is missing, and the transport runs the file
//! it found.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn sandbox(command: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email]\ntransport = \"sendmail\"\n\n[email.sendmail]\ncommand = \"{command}\"\n"
    ));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb
}

#[test]
fn a_bare_name_is_run_from_the_path_it_was_found_on() {
    let sb = sandbox("hd-test-sendmail");
    std::fs::create_dir(sb.path("bin")).unwrap();
    let program = sb.path("bin/hd-test-sendmail");
    let log = sb.path("ran");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$@\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        sb.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sb.ticket("dev", "high", "Mail me");
    sb.run_env(["config", "check"], &[("PATH", &path)])
        .success();
    sb.run_env(["notify", "flush"], &[("PATH", &path)])
        .success();
    let ran = std::fs::read_to_string(&log).expect("the program found on PATH ran");
    assert!(ran.contains("-- dev2@example.org"), "{ran}");
}

#[test]
fn a_missing_program_is_one_error_in_one_wording_whatever_runs_it() {
    let sb = sandbox("hd-no-such-sendmail");
    let origin = format!("`{}`", sb.path("helpdesk.toml").display());
    let expected = format!(
        "error: {origin}: `email.sendmail.command` `hd-no-such-sendmail` was not found on PATH: give its full path, or set `email.transport` to `smtp`"
    );
    // Nothing due: a flush that runs nothing does not need the program.
    sb.run(["notify", "flush"]).success();
    sb.ticket("dev", "high", "Mail me");
    sb.run(["config", "check"]).code(1).stderr_is(&expected);
    sb.run(["notify", "test", "--to", "x@example.org"])
        .code(1)
        .stderr_is(&expected);
    // Four workers, each building its transport: still one error.
    sb.run(["notify", "flush", "--concurrency", "4"])
        .code(1)
        .stderr_is(&expected);
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND (status <> 'pending' OR attempts > 0)"
        ),
        0
    );
}
