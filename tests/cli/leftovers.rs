//! What a failed command created is removed again (`Database::remove_new_file`).

use crate::support::*;

#[test]
fn an_init_that_cannot_write_its_configuration_leaves_no_database() {
    if sqlite_only() {
        return;
    }
    let sb = Sandbox::empty();
    std::fs::write(sb.path("blocker"), "x").unwrap();
    let run = sb
        .run([
            "--config",
            "blocker/helpdesk.toml",
            "--db",
            "new.db",
            "init",
        ])
        .code(1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: could not create `{}`",
            sb.path("blocker").display()
        )),
        "{}",
        run.stderr
    );
    for name in ["new.db", "new.db-wal", "new.db-shm"] {
        assert!(!sb.exists(name), "{name} was left behind");
    }
}
