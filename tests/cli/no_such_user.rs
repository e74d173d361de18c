//! Every command that takes a username says the same words when there is no
//! such user (`commands::user_named`), and changes nothing.

use crate::support::*;

#[test]
fn every_command_that_takes_a_username_names_a_missing_one_the_same_way() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.run(["group", "add", "ops"]).success();
    let id = sb.ticket("dev", "high", "who is zed")["id"].to_string();
    let before = sb.sql_i64("SELECT count(*) FROM events");
    let commands: Vec<Vec<&str>> = vec![
        vec!["user", "show", "zed"],
        vec!["user", "deactivate", "zed"],
        vec!["user", "grant", "zed", "change_helpdeskticket"],
        vec!["user", "prefs", "zed"],
        vec!["group", "add-user", "ops", "zed"],
        vec!["inbox", "--user", "zed"],
        vec!["ticket", "list", "--assignee", "zed"],
        vec!["ticket", "unwatch", &id, "--user", "zed"],
        vec!["ticket", "watch", &id, "--user", "zed"],
        vec!["ticket", "assign", &id, "--to", "zed", "--by", "dev"],
        vec!["notify", "preview", "--event", "new", "--user", "zed"],
    ];
    for args in commands {
        sb.run(&args).code(1).stderr_is(
            "error: no user named `zed`\n\
             hint: list users with `helpdesk user list`, or add one with `helpdesk user add zed --email …`",
        );
    }
    assert_eq!(sb.sql_i64("SELECT count(*) FROM events"), before);
}
