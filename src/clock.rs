//! The clock: every "now" the help desk reads (creation times, claims and
//! leases, backoff, purge cut-offs) comes from here, so tests can move time
//! instead of sleeping.
//!
//! Test builds (debug assertions on, as `cargo test` builds the binary) read
//! `HELPDESK_NOW=+DURATION` (for example `+2h`, or `+1500ms` for a test that
//! must land between two lease renewals): the clock runs that far ahead of
//! the real one. Release builds ignore the variable: an operator's
//! environment can never move the queue's clock.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as the store keeps it: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    real.saturating_add(offset_ms())
}

/// How far the clock runs ahead of the real one (0 outside test builds).
/// A PostgreSQL server's clock, which leases use, is moved by as much.
pub fn offset_ms() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return 0;
        }
        std::env::var("HELPDESK_NOW")
            .ok()
            .and_then(|value| parse_offset(&value))
            .unwrap_or(0)
    })
}

/// `+DURATION` (the CLI's duration syntax, or a whole number of `ms`) as
/// milliseconds.
fn parse_offset(value: &str) -> Option<i64> {
    let value = value.strip_prefix('+')?;
    if let Some(millis) = value.strip_suffix("ms") {
        return millis
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| millis.parse().ok())
            .flatten();
    }
    let duration = crate::cli::parse_duration(value).ok()?;
    i64::try_from(duration.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_offset;

    #[test]
    fn offsets_use_the_duration_syntax() {
        assert_eq!(parse_offset("+2h"), Some(7_200_000));
        assert_eq!(parse_offset("+45s"), Some(45_000));
        assert_eq!(parse_offset("+1500ms"), Some(1_500));
        assert_eq!(parse_offset("+-5ms"), None);
        assert_eq!(parse_offset("+ms"), None);
        assert_eq!(parse_offset("2h"), None);
        assert_eq!(parse_offset("+soon"), None);
    }
}
