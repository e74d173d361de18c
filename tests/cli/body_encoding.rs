//! How an email's body parts go on the wire: as `7bit`, exactly as
//! rendered, when they are ASCII and every line fits SMTP's 998 octets;
//! otherwise encoded (quoted-printable or base64), decoding to the same text.

use std::time::Duration;

use crate::support::*;

/// The `Content-Transfer-Encoding` of each part of a raw message, in order.
fn encodings(raw: &str) -> Vec<String> {
    raw.lines()
        .filter_map(|line| line.strip_prefix("Content-Transfer-Encoding: "))
        .map(|value| value.trim().to_string())
        .collect()
}

#[test]
fn a_body_part_is_7bit_when_it_fits_and_encoded_when_it_does_not() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.user("rita", "rita@example.org");
    // A 499-character line: longer than quoted-printable's 76, within SMTP's 998.
    let long = "word ".repeat(100).trim_end().to_string();
    let too_long = "x".repeat(1200);
    let accented = "Le café est fermé à 18 h.";
    sb.ticket("rita", "low", &long);
    sb.ticket("rita", "low", &too_long);
    sb.ticket("rita", "low", accented);
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(6, Duration::from_secs(5));
    let to_dev = |ticket: &str| {
        mail.iter()
            .find(|m| {
                m.rcpt_to == ["dev@example.org"]
                    && m.header("X-Helpdesk-Ticket").as_deref() == Some(ticket)
            })
            .unwrap_or_else(|| panic!("no email to dev about ticket {ticket}"))
    };

    let fits = to_dev("1");
    assert_eq!(encodings(&fits.data), ["7bit", "7bit"], "{}", fits.data);
    assert!(
        fits.data.lines().any(|line| line == long),
        "the long line goes unbroken:\n{}",
        fits.data
    );
    assert!(fits.text_part().contains(&long));

    for (ticket, text) in [("2", too_long.as_str()), ("3", accented)] {
        let m = to_dev(ticket);
        let parts = encodings(&m.data);
        assert_eq!(parts.len(), 2, "{}", m.data);
        assert!(
            parts
                .iter()
                .all(|e| e == "quoted-printable" || e == "base64"),
            "ticket {ticket}: {parts:?}"
        );
        assert!(
            m.data
                .lines()
                .all(|line| line.len() <= 998 && line.is_ascii()),
            "ticket {ticket}: every line on the wire is ASCII and fits:\n{}",
            m.data
        );
        assert!(m.text_part().contains(text), "ticket {ticket}");
        assert!(m.html_part().contains(text), "ticket {ticket}");
    }
}
