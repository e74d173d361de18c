//! Files another local user controls are never trusted (SPEC §4): a hostile
//! second user is `nobody`, writing into a world-writable sandbox folder. The
//! tests need root (to act as `nobody` or hand files to it); CI runs as root,
//! so there a missing privilege fails the test instead of skipping it.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::support::*;

const NOBODY: u32 = 65534;

fn me() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Whether this test can play the hostile user; when it cannot, it says so,
/// and under CI (which runs as root) that is a failure, never a silent pass.
fn can_play_nobody(test: &str) -> bool {
    if me() == 0 {
        return true;
    }
    let why = format!("{test}: needs root to act as another user (uid {NOBODY})");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; CI runs as root, so this must run there");
    }
    eprintln!("NOT RUN {why}");
    false
}

/// Opens the sandbox folder to everyone, as /tmp or a shared folder is.
fn world_writable(sb: &Sandbox) {
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// Runs a shell script as `nobody` in the sandbox folder.
fn as_nobody(sb: &Sandbox, script: &str) {
    let status = Command::new("sh")
        .args(["-c", script])
        .current_dir(sb.dir.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .expect("sh runs as nobody");
    assert!(status.success(), "as nobody: {script}");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn give_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

fn not_trusted_owner(path: &Path) -> String {
    format!(
        "it is owned by another user (uid {NOBODY}), and only files owned by you or by root are trusted: check it, then run `chown {} {}`",
        me(),
        path.display()
    )
}

/// The sandbox's own configuration with the sendmail transport.
fn sendmail_config(command: &Path) -> String {
    format!(
        "{BASE_CONFIG}\n[email]\ntransport = \"sendmail\"\n\n[email.sendmail]\ncommand = \"{}\"\n",
        command.display()
    )
}

#[test]
fn a_configuration_file_written_by_another_user_is_refused() {
    let sb = Sandbox::new();
    if !can_play_nobody("a_configuration_file_written_by_another_user_is_refused") {
        return;
    }
    world_writable(&sb);
    std::fs::remove_file(sb.path("helpdesk.toml")).unwrap();
    // Another user's configuration runs its own "sendmail" as whoever runs helpdesk.
    as_nobody(
        &sb,
        "printf '#!/bin/sh\\ntouch pwned\\n' > evil.sh && chmod 755 evil.sh && \
         printf '[email]\\ntransport = \"sendmail\"\\n[email.sendmail]\\ncommand = \"evil.sh\"\\n' > helpdesk.toml",
    );
    let config = sb.path("helpdesk.toml");
    let expected = format!(
        "error: configuration file `{}` is not trusted: {}",
        config.display(),
        not_trusted_owner(&config)
    );
    for args in [
        vec!["notify", "test", "--to", "root@example.org"],
        vec!["config", "check"],
        vec!["notify", "flush"],
    ] {
        sb.run(&args).code(1).stderr_is(&expected);
    }
    assert!(!sb.exists("pwned"), "another user's command ran");
}

#[test]
fn a_configuration_file_others_can_change_is_refused() {
    let sb = Sandbox::new();
    let config = sb.path("helpdesk.toml");
    for mode in [0o664, 0o646, 0o666] {
        chmod(&config, mode);
        let expected = format!(
            "error: configuration file `{0}` is not trusted: the file can be changed by other users (mode {mode:o}): run `chmod go-w {0}`",
            config.display()
        );
        sb.run(["user", "list"]).code(1).stderr_is(&expected);
        sb.run(["config", "check"]).code(1).stderr_is(&expected);
    }
    // Readable by all is fine: it holds no secret.
    chmod(&config, 0o644);
    sb.run(["config", "check"]).success();
}

#[test]
fn templates_a_password_file_and_a_sendmail_command_of_another_user_are_refused() {
    let sb = Sandbox::new();
    if !can_play_nobody(
        "templates_a_password_file_and_a_sendmail_command_of_another_user_are_refused",
    ) {
        return;
    }
    let config = sb.path("helpdesk.toml");
    let origin = format!("`{}`", config.display());
    // templates_dir: another user's folder, or one anybody can write to.
    std::fs::create_dir_all(sb.path("templates/email")).unwrap();
    let templates = sb.path("templates");
    sb.write_config(&format!("templates_dir = \"templates\"\n{BASE_CONFIG}"));
    sb.run(["config", "check"]).success();
    chmod(&templates, 0o777);
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: {origin}: `templates_dir` `{0}` is not trusted: the folder can be changed by other users (mode 777): run `chmod go-w {0}`",
        templates.display()
    ));
    chmod(&templates, 0o755);
    give_to_nobody(&templates);
    sb.run(["ticket", "list"]).code(1).stderr_is(&format!(
        "error: {origin}: `templates_dir` `{}` is not trusted: {}",
        templates.display(),
        not_trusted_owner(&templates)
    ));
    std::os::unix::fs::chown(&templates, Some(me()), Some(me())).unwrap();
    // One template file inside it written by another user.
    let template = sb.path("templates/email/test.txt");
    std::fs::write(&template, "custom {{ to }}").unwrap();
    give_to_nobody(&template);
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: template `{}` is not trusted: {}",
        template.display(),
        not_trusted_owner(&template)
    ));
    std::fs::remove_file(&template).unwrap();

    // password_file.
    let secret = sb.path("smtp-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    chmod(&secret, 0o600);
    sb.write_config(&format!(
        "{BASE_CONFIG}username = \"helpdesk\"\npassword_file = \"smtp-password\"\n"
    ));
    sb.run(["config", "check"]).success();
    chmod(&secret, 0o622);
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: {origin}: `email.smtp.password_file` `{0}` is not trusted: the file can be changed by other users (mode 622): run `chmod go-w {0}`",
        secret.display()
    ));
    chmod(&secret, 0o600);
    give_to_nobody(&secret);
    sb.run(["notify", "flush"]).code(1).stderr_is(&format!(
        "error: {origin}: `email.smtp.password_file` `{}` is not trusted: {}",
        secret.display(),
        not_trusted_owner(&secret)
    ));

    // The sendmail command.
    let command = sb.path("fake-sendmail");
    std::fs::write(&command, "#!/bin/sh\ncat > /dev/null\n").unwrap();
    chmod(&command, 0o755);
    sb.write_config(&sendmail_config(&command));
    sb.run(["config", "check"]).success();
    chmod(&command, 0o777);
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: {origin}: `email.sendmail.command` `{0}` is not trusted: the file can be changed by other users (mode 777): run `chmod go-w {0}`",
        command.display()
    ));
    chmod(&command, 0o755);
    give_to_nobody(&command);
    sb.run(["notify", "test", "--to", "root@example.org"])
        .code(1)
        .stderr_is(&format!(
            "error: {origin}: `email.sendmail.command` `{}` is not trusted: {}",
            command.display(),
            not_trusted_owner(&command)
        ));
}

#[test]
fn a_database_another_user_prepared_is_refused() {
    if crate::support::sqlite_only() {
        return;
    }
    let sb = Sandbox::empty();
    if !can_play_nobody("a_database_another_user_prepared_is_refused") {
        return;
    }
    world_writable(&sb);
    let db = sb.path("helpdesk.db");
    // An empty 0666 file waiting for init to adopt it.
    as_nobody(&sb, "touch helpdesk.db && chmod 666 helpdesk.db");
    let expected = format!(
        "error: database file `{}` is not safe to use: {}",
        db.display(),
        not_trusted_owner(&db)
    );
    sb.run(["init"]).code(1).stderr_is(&expected);
    sb.run(["user", "list"]).code(1).stderr_is(&expected);
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "init wrote to it");
    std::fs::remove_file(&db).unwrap();
    // A database of ours that others can read.
    sb.run(["init"]).success();
    sb.user("bob", "bob@example.org");
    chmod(&db, 0o644);
    sb.run(["user", "list"]).code(1).stderr_is(&format!(
        "error: database file `{0}` is not safe to use: other users can read or write it (mode 644): run `chmod 600 {0}`",
        db.display()
    ));
    chmod(&db, 0o600);
    // A hard link another user keeps to it.
    std::fs::hard_link(&db, sb.path("copy")).unwrap();
    sb.run(["user", "list"]).code(1).stderr_is(&format!(
        "error: database file `{}` is not safe to use: it has 2 hard links, so it can be read under another name: copy it to a new file and use that",
        db.display()
    ));
    std::fs::remove_file(sb.path("copy")).unwrap();
    sb.run(["user", "list"]).success();
}

#[test]
fn wal_and_shm_files_another_user_prepared_are_refused() {
    if crate::support::sqlite_only() {
        return;
    }
    for suffix in ["-wal", "-shm"] {
        let sb = Sandbox::empty();
        if !can_play_nobody("wal_and_shm_files_another_user_prepared_are_refused") {
            return;
        }
        world_writable(&sb);
        as_nobody(
            &sb,
            &format!("touch helpdesk.db{suffix} && chmod 666 helpdesk.db{suffix}"),
        );
        let file = sb.path(&format!("helpdesk.db{suffix}"));
        sb.run(["init"]).code(1).stderr_is(&format!(
            "error: database file `{}` is not safe to use: {}",
            file.display(),
            not_trusted_owner(&file)
        ));
        assert!(!sb.exists("helpdesk.db"), "{suffix}: the database was made");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
        // Ours, but open to others (a hard link to them works the same way).
        std::fs::remove_file(&file).unwrap();
        sb.run(["init"]).success();
        sb.user("bob", "bob@example.org");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o666);
        sb.run(["user", "list"]).code(1).stderr_is(&format!(
            "error: database file `{0}` is not safe to use: other users can read or write it (mode 666): run `chmod 600 {0}`",
            file.display()
        ));
    }
}

#[test]
fn init_on_a_dangling_symlink_writes_nothing() {
    let sb = Sandbox::empty();
    std::fs::remove_file(sb.path("helpdesk.toml")).unwrap();
    std::os::unix::fs::symlink(sb.path("gone/elsewhere.db"), sb.path("helpdesk.db")).unwrap();
    sb.run(["init"]).code(1).stderr_is(&format!(
        "error: database `{}` could not be opened: it is a symbolic link to a file that does not exist; remove the link or point it at a database",
        sb.path("helpdesk.db").display()
    ));
    assert!(!sb.exists("helpdesk.toml"), "helpdesk.toml was written");
    assert!(!sb.exists("gone"), "a folder was made");
    // Other commands call it missing.
    sb.run(["user", "list"])
        .code(1)
        .stderr_has("does not exist");
}

#[test]
fn a_template_that_links_out_of_templates_dir_is_refused() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("templates/email")).unwrap();
    std::fs::write(sb.path("secret"), "the root password").unwrap();
    chmod(&sb.path("secret"), 0o600);
    let link = sb.path("templates/email/ticket_new.txt");
    std::os::unix::fs::symlink(sb.path("secret"), &link).unwrap();
    sb.write_config(&format!("templates_dir = \"templates\"\n{BASE_CONFIG}"));
    let templates = sb.path("templates").canonicalize().unwrap();
    let expected = format!(
        "template `{}` resolves to `{}`, outside `templates_dir` `{}`: copy the file into the folder instead of linking to it",
        templates.join("email/ticket_new.txt").display(),
        sb.path("secret").canonicalize().unwrap().display(),
        templates.display()
    );
    sb.run(["config", "check"])
        .code(1)
        .stderr_is(&format!("error: {expected}"));
    // A flush sends nothing of it.
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "linked");
    let run = sb.run(["notify", "flush"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        sb.smtp
            .received()
            .iter()
            .all(|m| !m.data.contains("root password")),
        "the secret was mailed"
    );
    // A link that stays inside the folder is fine.
    std::fs::remove_file(&link).unwrap();
    std::fs::write(sb.path("templates/email/real.txt"), "{{ ticket.id }}").unwrap();
    std::os::unix::fs::symlink("real.txt", &link).unwrap();
    sb.run(["config", "check"]).success();
}

#[test]
fn a_missing_sendmail_command_is_named_by_config_check_and_stops_a_flush() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "queued");
    let origin = format!("`{}`", sb.path("helpdesk.toml").display());
    sb.write_config(&sendmail_config(Path::new("/nonexistent/sendmail")));
    let expected = format!(
        "error: {origin}: `email.sendmail.command` `/nonexistent/sendmail` does not exist: install a mail server that provides it, or set `email.transport` to `smtp`"
    );
    sb.run(["config", "check"]).code(1).stderr_is(&expected);
    sb.run(["notify", "flush"]).code(1).stderr_is(&expected);
    // Nothing was claimed: both emails are still pending, with no attempt.
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'pending'"
        ),
        1
    );
    sb.write_config(&sendmail_config(Path::new("no-such-sendmail")));
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: {origin}: `email.sendmail.command` `no-such-sendmail` was not found on PATH: give its full path, or set `email.transport` to `smtp`"
    ));
}
