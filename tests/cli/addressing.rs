//! How an email is addressed and identified: the debug redirect recorded in
//! the attempt log, Message-IDs on the site's host without its port, a
//! Message-ID on the test email, and international domains in their ASCII
//! form for a server without SMTPUTF8.

use crate::support::*;

fn message_id(mail: &crate::support::smtp::ReceivedMail) -> String {
    mail.header("Message-ID").expect("a Message-ID header")
}

#[test]
fn debug_mode_records_the_address_actually_used() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Queued for a real person");
    sb.write_config(&format!(
        "debug = true\ndevelopment_email = \"devnull@example.org\"\n{BASE_CONFIG}"
    ));
    sb.run(["notify", "flush"]).success();
    let id = sb.sql_i64("SELECT id FROM notifications WHERE channel = 'email'");
    let shown = sb
        .run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json();
    let reply = shown["attempt_log"][0]["reply"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reply.ends_with(" (debug mode: sent to devnull@example.org instead of dev@example.org)"),
        "{shown}"
    );
    assert_eq!(sb.smtp.received()[0].rcpt_to, ["devnull@example.org"]);
}

#[test]
fn message_ids_use_the_site_host_without_its_port() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[site]\ndomain = \"help.example.org:8443\"\n"
    ));
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Ported");
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.received();
    assert!(
        message_id(&mail[0]).ends_with("@help.example.org>"),
        "{}",
        message_id(&mail[0])
    );
    assert!(
        mail[0]
            .text_part()
            .contains("https://help.example.org:8443/help_desk/page/1/detail/"),
        "links keep the port"
    );
}

#[test]
fn the_test_email_has_a_message_id() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[site]\ndomain = \"help.example.org:8443\"\n"
    ));
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .success();
    let mail = sb.smtp.received();
    let id = message_id(&mail[0]);
    assert!(
        id.starts_with("<test.") && id.ends_with("@help.example.org>"),
        "{id}"
    );
}

#[test]
fn an_international_domain_goes_out_in_ascii_without_smtputf8() {
    let options = ServerOptions {
        no_smtputf8: true,
        ..Default::default()
    };
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.run(["notify", "test", "--to", "plain@exämple.org"])
        .success();
    let mail = sb.smtp.received();
    assert_eq!(mail[0].rcpt_to, ["plain@xn--exmple-cua.org"]);
}

#[test]
fn a_non_ascii_local_part_without_smtputf8_is_refused_in_words() {
    let options = ServerOptions {
        no_smtputf8: true,
        ..Default::default()
    };
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.run(["notify", "test", "--to", "jörg@example.org"])
        .code(1)
        .stderr_is(&format!(
            "error: the test email was not accepted: 127.0.0.1:{}: `jörg@example.org` has a non-ASCII local part and the server does not offer SMTPUTF8",
            sb.smtp.port()
        ));
}
