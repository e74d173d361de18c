//! Inbound mail, the pure part of `helpdesk mail receive` (SPEC §6): reading
//! one RFC 5322 message into typed fields ([`parse`]), reading the
//! `Authentication-Results` a trusted server wrote ([`auth`]), deciding what
//! the message becomes — bounce, ignored, refused, comment or new ticket — in
//! the SPEC's order ([`classify`]), and the text a comment or description is
//! made of ([`text`]).
//!
//! Nothing here reads files, speaks SMTP or SQL: the command reads the message
//! (at most its configured size cap) and hands over the bytes; the store answers
//! the few questions classification asks through [`classify::Lookup`], and
//! writes the outcome in one transaction with the received Message-ID.

pub mod auth;
pub mod classify;
pub mod parse;
pub mod text;

#[cfg(test)]
mod fixtures;

/// proptest's settings for this module's properties: `PROPTEST_CASES` cases (64
/// by default, as in `properties.rs`), no failure files.
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
