//! Templates from `templates_dir` (SPEC §1, §4): `config check` compiles
//! every one of them and names a syntax error's file and line, and a
//! template that would run for ever is stopped (minijinja's fuel), failing
//! that event's emails with the reason instead of holding up the flush.

use std::time::{Duration, Instant};

use crate::support::*;

fn with_templates(files: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("templates/email")).unwrap();
    for (name, text) in files {
        std::fs::write(sb.path(&format!("templates/email/{name}")), text).unwrap();
    }
    sb.write_config(&format!("templates_dir = \"templates\"\n{BASE_CONFIG}"));
    sb
}

#[test]
fn config_check_names_a_template_syntax_error_with_its_file_and_line() {
    let sb = with_templates(&[(
        "ticket_new.txt",
        "Ticket #{{ ticket.id }}\n\n{% for x in ticket.items %}\n{{ x }\n",
    )]);
    let file = sb
        .path("templates")
        .canonicalize()
        .unwrap()
        .join("email/ticket_new.txt");
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: template `{}` line 4: syntax error: unexpected `}}`, expected end of variable block",
        file.display()
    ));
    // A built-in template that a file does not replace is compiled too: all is well.
    std::fs::write(file, "Ticket #{{ ticket.id }}\n").unwrap();
    sb.run(["config", "check"]).success();
}

#[test]
fn a_template_that_runs_for_ever_fails_its_emails_and_the_flush_ends() {
    let sb = with_templates(&[(
        "ticket_new.txt",
        "{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}",
    )]);
    sb.run(["config", "check"]).success();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.ticket("dev", "high", "loops");
    let started = Instant::now();
    let run = sb.run(["notify", "flush", "--max-time", "3s"]).code(3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the flush took {:?}",
        started.elapsed()
    );
    let reason = "could not render: template `email/ticket_new.txt` did more work than an email may take (a loop that runs too long?)";
    assert!(run.stderr.contains(reason), "{}", run.stderr);
    let list = sb
        .run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["status"], "failed", "{row}");
        assert_eq!(row["last_error"], reason, "{row}");
    }
    assert!(sb.smtp.received().is_empty());
}

#[test]
fn a_templates_dir_that_is_not_there_is_a_configuration_error() {
    let sb = Sandbox::new();
    sb.write_config(&format!("templates_dir = \"nowhere\"\n{BASE_CONFIG}"));
    let config = sb.path("helpdesk.toml");
    sb.run(["config", "check"]).code(1).stderr_is(&format!(
        "error: `{}`: `templates_dir` `{}` does not exist: create it, or remove the key to use the built-in templates",
        config.display(),
        sb.path("nowhere").display()
    ));
    std::fs::write(sb.path("nowhere"), "").unwrap();
    sb.run(["notify", "flush"]).code(1).stderr_is(&format!(
        "error: `{}`: `templates_dir` `{}` is not a folder: create it, or remove the key to use the built-in templates",
        config.display(),
        sb.path("nowhere").display()
    ));
}

/// A digest is rendered when `notify digest` makes it (each one is its
/// recipient's own): a template changed afterwards applies to the next
/// digest, not to one already queued. When rendering fails then, the digest
/// is made all the same and the flush renders it again, failing it with the
/// reason like any email; once the template is fixed, `notify retry` sends it.
#[test]
fn a_digest_is_rendered_when_made_and_one_that_failed_to_render_is_rendered_at_the_flush() {
    let sb = with_templates(&[]);
    sb.user("cat", "cat@example.org");
    sb.user("rita", "rita@example.org");
    sb.run(["user", "prefs", "cat", "--email", "digest", "--app", "off"])
        .success();
    sb.ticket("rita", "low", "first");
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    let digest_txt = sb.path("templates/email/digest.txt");
    let comment = |body: &str| {
        sb.run(["ticket", "comment", "1", "--by", "rita", "--body", body])
            .success();
    };

    comment("made with the built-in template");
    sb.run(["notify", "digest"]).success();
    std::fs::write(&digest_txt, "CHANGED {{ title }}\n").unwrap();
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(mail.len(), 1);
    let text = mail[0].text_part();
    assert!(
        text.contains("made with the built-in template") && !text.contains("CHANGED"),
        "{text}"
    );

    std::fs::write(&digest_txt, "{{ no_such_value }}\n").unwrap();
    comment("rendered after the fix");
    let shown = sb
        .path("templates")
        .canonicalize()
        .unwrap()
        .join("email/digest.txt");
    let why = format!(
        "could not render template `{}` line 1: undefined value",
        shown.display()
    );
    sb.run(["notify", "digest"]).success().stderr_is(&format!(
        "warning: could not render 1 digest email now ({why}): it is queued all the same, and the flush renders it again; fix the template before then, or the flush fails it with the reason"
    ));
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'"),
        0
    );
    let run = sb.run(["notify", "flush"]).code(3);
    let reason = format!("could not render: {why}");
    assert!(
        run.stderr
            .contains(&format!("to cat@example.org failed: {reason}")),
        "{}",
        run.stderr
    );
    let failed = sb.sql_i64("SELECT id FROM notifications WHERE status = 'failed'");
    assert_eq!(sb.smtp.received().len(), 1);

    std::fs::write(&digest_txt, "FIXED {{ title }}\n{% for t in tickets %}{% for u in t.updates %}{{ u.body }}\n{% endfor %}{% endfor %}").unwrap();
    sb.run(["notify", "retry", &failed.to_string()]).success();
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(2, Duration::from_secs(5));
    let text = mail[1].text_part();
    assert!(
        text.starts_with("FIXED Help desk digest: 1 update on 1 ticket")
            && text.contains("rendered after the fix"),
        "{text}"
    );
}

/// Templates that cannot be loaded do not stop `notify digest`: the digest
/// is made without its email, with a warning, and rendered by the flush.
#[test]
fn a_template_that_cannot_be_loaded_does_not_stop_notify_digest() {
    let sb = with_templates(&[("ticket_new.txt", "{{ ticket.id }\n")]);
    sb.user("cat", "cat@example.org");
    sb.user("rita", "rita@example.org");
    sb.run(["user", "prefs", "cat", "--email", "digest"])
        .success();
    sb.run(["user", "add", "dev", "--email", "dev@example.org"])
        .success();
    sb.run([
        "ticket",
        "create",
        "--created-by",
        "rita",
        "--purpose",
        "app",
        "--priority",
        "low",
        "--description",
        "broken templates",
    ])
    .success();
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "held"])
        .success();
    let file = sb
        .path("templates")
        .canonicalize()
        .unwrap()
        .join("email/ticket_new.txt");
    let run = sb.run(["notify", "digest"]).success();
    let syntax_error = format!(
        "template `{}` line 1: syntax error: unexpected `}}`, expected end of variable block",
        file.display()
    );
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "warning: could not render 1 digest email now: the templates do not load ({syntax_error}); it is queued all the same, and no flush sends any email until the templates load (`helpdesk config check` shows what is wrong)"
        )
    );
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'"),
        0
    );
    // As the warning says: no flush runs until the templates load.
    sb.run(["notify", "flush"])
        .code(1)
        .stderr_is(&format!("error: {syntax_error}"));
    assert!(sb.smtp.received().is_empty());
    // Fixed: the digest is rendered by the flush, and sent.
    std::fs::remove_file(&file).unwrap();
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(2, Duration::from_secs(5));
    let digest = mail
        .iter()
        .find(|m| m.rcpt_to == ["cat@example.org"])
        .expect("cat's digest");
    assert_eq!(digest.subject(), "Help desk digest: 1 update on 1 ticket");
    assert!(digest.text_part().contains("held"));
}
