//! `user …` and `group …`: adding users (refusing bad or duplicate data and
//! writing nothing then), listing them, direct and group permissions, and
//! what those mean for who is notified (SPEC §1 "Recipients", §2).

use serde_json::Value;

use crate::support::*;

fn users(sb: &Sandbox) -> i64 {
    sb.sql_i64("SELECT count(*) FROM users")
}

fn show(sb: &Sandbox, user: &str) -> Value {
    sb.run(["user", "show", user, "--format", "json"])
        .success()
        .json()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The channels on which `user` was notified of this new ticket.
fn channels_for(ticket: &Value, user: &str) -> Vec<String> {
    let mut out: Vec<String> = ticket["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["user"] == user)
        .map(|n| n["channel"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn added_users_show_and_list_as_json() {
    let sb = Sandbox::new();
    sb.run([
        "user",
        "add",
        "dana",
        "--email",
        "dana@example.org",
        "--name",
        "Dana Scully",
    ])
    .success()
    .stdout_has("dana");
    sb.user("bob", "bob@example.org");
    let dana = show(&sb, "dana");
    assert_eq!(dana["username"], "dana");
    assert_eq!(dana["email"], "dana@example.org");
    assert_eq!(dana["name"], "Dana Scully");
    assert_eq!(dana["active"], true);
    let created = dana["created_at"].as_str().expect("created_at");
    assert!(created.ends_with('Z'), "{created}");
    created.parse::<jiff::Timestamp>().expect("RFC 3339");
    assert!(strings(&dana["groups"]).is_empty());
    assert!(strings(&dana["permissions"]).is_empty());

    let list = sb
        .run(["user", "list", "--format", "json"])
        .success()
        .json();
    let mut names: Vec<String> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["bob", "dana"]);
    assert_eq!(users(&sb), 2);
}

#[test]
fn an_invalid_email_is_refused_and_nothing_is_written() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    for bad in [
        "not-an-email",
        "dana@",
        "@example.org",
        "dana example.org",
        "dana@@example.org",
        "Dana <dana@example.org>",
        "",
    ] {
        sb.run(["user", "add", "dana", "--email", bad])
            .code(1)
            .stderr_has("error:");
        assert_eq!(users(&sb), 1, "{bad:?} was accepted");
    }
}

#[test]
fn a_line_break_in_an_address_or_name_is_refused() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    for bad in [
        "eve@example.org\r\nBcc: x@evil.test",
        "eve@example.org\nBcc: x@evil.test",
        "eve@example.org\r",
        "eve@example.org\n",
    ] {
        sb.run(["user", "add", "eve", "--email", bad])
            .code(1)
            .stderr_has("error:");
        assert_eq!(users(&sb), 1, "{bad:?} was accepted");
    }
    sb.run([
        "user",
        "add",
        "eve",
        "--email",
        "eve@example.org",
        "--name",
        "Eve\r\nBcc: x@evil.test",
    ])
    .code(1);
    assert_eq!(users(&sb), 1);
}

#[test]
fn a_duplicate_username_is_refused() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    sb.run(["user", "add", "bob", "--email", "other@example.org"])
        .code(1)
        .stderr_has("bob");
    assert_eq!(users(&sb), 1);
    assert_eq!(show(&sb, "bob")["email"], "bob@example.org");
}

#[test]
fn a_duplicate_email_is_refused_whatever_its_case() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    for dup in ["bob@example.org", "Bob@EXAMPLE.org", "BOB@example.ORG"] {
        sb.run(["user", "add", "robert", "--email", dup])
            .code(1)
            .stderr_has("bob");
        assert_eq!(users(&sb), 1, "{dup} was accepted");
    }
    sb.run(["user", "show", "robert"]).code(1);
}

#[test]
fn a_username_with_a_space_or_control_character_is_refused() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    for (i, bad) in ["a b", " ", "", "tab\tname", "new\nline", "semi;colon"]
        .into_iter()
        .enumerate()
    {
        let email = format!("u{i}@example.org");
        sb.run(["user", "add", bad, "--email", &email])
            .code(1)
            .stderr_has("error:");
        assert_eq!(users(&sb), 1, "{bad:?} was accepted");
    }
    // Django's characters are fine.
    sb.user("first.last+tag@corp_x-y", "fl@example.org");
    assert_eq!(users(&sb), 2);
}

#[test]
fn deactivate_and_activate_change_who_is_notified() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("bob", "bob@example.org");
    sb.run(["user", "deactivate", "dev"]).success();
    assert_eq!(show(&sb, "dev")["active"], false);
    // Deactivating twice is not an error.
    sb.run(["user", "deactivate", "dev"]).success();
    let ticket = sb.ticket("bob", "high", "while away");
    assert!(channels_for(&ticket, "dev").is_empty(), "{ticket}");

    sb.run(["user", "activate", "dev"]).success();
    assert_eq!(show(&sb, "dev")["active"], true);
    let ticket = sb.ticket("bob", "high", "back again");
    assert_eq!(channels_for(&ticket, "dev"), vec!["app", "email"]);
    sb.run(["user", "deactivate", "nobody"])
        .code(1)
        .stderr_has("nobody");
}

#[test]
fn grant_and_revoke_a_direct_permission() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    sb.user("boss", "boss@example.org");
    sb.run(["user", "grant", "boss", "delete_helpdeskticket"])
        .success();
    sb.run(["user", "grant", "boss", "view_helpdeskticket"])
        .success();
    // Granting twice is not an error and does not duplicate it.
    sb.run(["user", "grant", "boss", "delete_helpdeskticket"])
        .success();
    assert_eq!(
        strings(&show(&sb, "boss")["permissions"]),
        vec!["delete_helpdeskticket", "view_helpdeskticket"]
    );
    let ticket = sb.ticket("bob", "low", "granted");
    assert_eq!(channels_for(&ticket, "boss"), vec!["app"]);

    sb.run(["user", "revoke", "boss", "delete_helpdeskticket"])
        .success();
    assert_eq!(
        strings(&show(&sb, "boss")["permissions"]),
        vec!["view_helpdeskticket"]
    );
    let ticket = sb.ticket("bob", "low", "revoked");
    assert!(channels_for(&ticket, "boss").is_empty(), "{ticket}");
    sb.run(["user", "grant", "nobody", "delete_helpdeskticket"])
        .code(1)
        .stderr_has("no user named `nobody`");
}

#[test]
fn groups_grant_revoke_and_membership_decide_who_is_a_manager() {
    let sb = Sandbox::new();
    sb.user("bob", "bob@example.org");
    sb.user("boss", "boss@example.org");
    sb.run(["group", "add", "leads"]).success();
    sb.run(["group", "add-user", "leads", "boss"]).success();
    let ticket = sb.ticket("bob", "low", "no permission yet");
    assert!(channels_for(&ticket, "boss").is_empty(), "{ticket}");

    sb.run(["group", "grant", "leads", "delete_helpdeskticket"])
        .success();
    let ticket = sb.ticket("bob", "low", "group granted");
    assert_eq!(channels_for(&ticket, "boss"), vec!["app"]);

    let groups = sb
        .run(["group", "list", "--format", "json"])
        .success()
        .json();
    let leads = groups
        .as_array()
        .expect("an array")
        .iter()
        .find(|g| g["name"] == "leads")
        .unwrap_or_else(|| panic!("no group leads: {groups}"));
    assert_eq!(
        strings(&leads["permissions"]),
        vec!["delete_helpdeskticket"]
    );
    assert_eq!(strings(&leads["members"]), vec!["boss"]);
    assert_eq!(strings(&show(&sb, "boss")["groups"]), vec!["leads"]);
    // Group permissions are not direct permissions.
    assert!(strings(&show(&sb, "boss")["permissions"]).is_empty());

    sb.run(["group", "remove-user", "leads", "boss"]).success();
    let ticket = sb.ticket("bob", "low", "removed from group");
    assert!(channels_for(&ticket, "boss").is_empty(), "{ticket}");
    assert!(strings(&show(&sb, "boss")["groups"]).is_empty());

    sb.run(["group", "add-user", "leads", "boss"]).success();
    sb.run(["group", "revoke", "leads", "delete_helpdeskticket"])
        .success();
    let ticket = sb.ticket("bob", "low", "group revoked");
    assert!(channels_for(&ticket, "boss").is_empty(), "{ticket}");
}

#[test]
fn group_add_takes_permissions_and_refuses_duplicates() {
    let sb = Sandbox::new();
    sb.user("boss", "boss@example.org");
    sb.run([
        "group",
        "add",
        "admins",
        "--perm",
        "delete_helpdeskticket",
        "--perm",
        "change_helpdeskticket",
    ])
    .success();
    let groups = sb.sql_i64("SELECT count(*) FROM groups");
    sb.run(["group", "add", "admins"])
        .code(1)
        .stderr_has("admins");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM groups"), groups);
    let list = sb
        .run(["group", "list", "--format", "json"])
        .success()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let mut perms = strings(&list[0]["permissions"]);
    perms.sort();
    assert_eq!(
        perms,
        vec!["change_helpdeskticket", "delete_helpdeskticket"]
    );

    sb.run(["group", "add-user", "nogroup", "boss"])
        .code(1)
        .stderr_has("nogroup");
    sb.run(["group", "add-user", "admins", "nobody"])
        .code(1)
        .stderr_has("no user named `nobody`");
    sb.run(["group", "grant", "nogroup", "view_helpdeskticket"])
        .code(1);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM group_members"), 0);
}

#[test]
fn an_unknown_permission_is_wrong_usage() {
    let sb = Sandbox::new();
    sb.user("boss", "boss@example.org");
    sb.run(["group", "add", "leads"]).success();
    for args in [
        vec!["user", "grant", "boss", "delete_everything"],
        vec!["user", "revoke", "boss", "delete_everything"],
        vec!["group", "grant", "leads", "delete_everything"],
        vec!["group", "revoke", "leads", "delete_everything"],
        vec!["group", "add", "other", "--perm", "delete_everything"],
    ] {
        sb.run(&args)
            .code(2)
            .stderr_has("delete_everything")
            .stderr_has("delete_helpdeskticket");
    }
    assert_eq!(sb.sql_i64("SELECT count(*) FROM user_permissions"), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM group_permissions"), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM groups"), 1);
}

#[test]
fn every_user_and_group_command_prints_one_json_document() {
    let sb = Sandbox::new();
    let commands: &[&[&str]] = &[
        &["user", "add", "zed", "--email", "zed@example.org"],
        &["user", "show", "zed"],
        &["user", "list"],
        &["user", "deactivate", "zed"],
        &["user", "activate", "zed"],
        &["user", "grant", "zed", "view_helpdeskticket"],
        &["user", "revoke", "zed", "view_helpdeskticket"],
        &["group", "add", "team", "--perm", "add_helpdeskticket"],
        &["group", "grant", "team", "view_helpdeskticket"],
        &["group", "revoke", "team", "view_helpdeskticket"],
        &["group", "add-user", "team", "zed"],
        &["group", "remove-user", "team", "zed"],
        &["group", "list"],
    ];
    for args in commands {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let run = sb.run(&all).success();
        serde_json::from_str::<Value>(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON document ({e}):\n{}",
                run.stdout
            )
        });
    }
    assert_eq!(show(&sb, "zed")["active"], true);
}

/// The `developer:` and `manager:` lines of `user show`.
fn roles(sb: &Sandbox, user: &str) -> (String, String) {
    let run = sb.run(["user", "show", user]).success();
    let line = |key: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{}", run.stdout))
            .trim()
            .to_string()
    };
    (line("developer:"), line("manager:"))
}

#[test]
fn show_says_whether_the_user_is_a_developer_or_a_manager_and_why() {
    let sb = Sandbox::new();
    sb.user("dev", "DEV@example.org");
    sb.user("plain", "plain@example.org");
    sb.user("direct", "direct@example.org");
    sb.run(["user", "grant", "direct", "delete_helpdeskticket"])
        .success();
    sb.manager("boss", "boss@example.org");
    // dev2 is a developer and a manager, twice over.
    sb.user("dev2", "dev2@example.org");
    sb.run(["group", "add-user", "managers", "dev2"]).success();
    sb.run(["user", "grant", "dev2", "delete_helpdeskticket"])
        .success();

    assert_eq!(
        roles(&sb, "dev"),
        (
            "yes: `admins` lists Dev One <dev@example.org>".into(),
            "no: does not hold `delete_helpdeskticket`, directly or through a group".into()
        )
    );
    assert_eq!(
        roles(&sb, "plain"),
        (
            "no: no `admins` entry has this address".into(),
            "no: does not hold `delete_helpdeskticket`, directly or through a group".into()
        )
    );
    assert_eq!(
        roles(&sb, "direct").1,
        "yes: holds `delete_helpdeskticket` directly"
    );
    assert_eq!(
        roles(&sb, "boss").1,
        "yes: holds `delete_helpdeskticket` through group `managers`"
    );
    assert_eq!(
        roles(&sb, "dev2"),
        (
            "yes: `admins` lists Dev Two <DEV2@Example.org>".into(),
            "yes: holds `delete_helpdeskticket` directly; holds `delete_helpdeskticket` through group `managers`".into()
        )
    );
    // A deactivated user keeps the role but is told apart: nobody notifies them.
    sb.run(["user", "deactivate", "boss"]).success();
    assert!(
        roles(&sb, "boss")
            .1
            .starts_with("yes (deactivated: not notified): ")
    );
    // JSON says the same.
    let json = sb
        .run(["user", "show", "dev2", "--format", "json"])
        .success()
        .json();
    assert_eq!(json["roles"]["developer"], "Dev Two <DEV2@Example.org>");
    assert_eq!(json["roles"]["manager"].as_array().map(Vec::len), Some(2));
}
