//! The retry policy, whole: how long a deferred email waits before its next
//! attempt, and when a transiently failing email is given up (`failed`).
//! A transient failure is retried until the email is older than
//! `queue.max_age` (postfix's `maximal_queue_lifetime`), or, when
//! `queue.max_attempts` is set, has used that many attempts. And whether
//! an email goes out at all: one to a suppressed address fails unsent.

use std::time::Duration;

use crate::config::{Config, Queue};
use crate::store::suppressions;

/// Longest wait between two attempts, before jitter.
const MAX_BACKOFF_SECS: u64 = 3600;

/// What to do with an email after a transient failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Due again at this time (milliseconds since the epoch).
    Retry { at: i64 },
    /// Make it `failed`; the reason says why it was given up.
    GiveUp { reason: String },
}

/// `suppressed: <reason>` when the address an email for `to` would go to
/// under `config` (`Config::delivery_address`, the debug redirect) is on
/// the suppression list: the email fails without contacting the server.
/// The flush and its dry run both ask here.
pub fn suppressed(config: &Config, list: &suppressions::List, to: &str) -> Option<String> {
    list.reason_for(config.delivery_address(to))
        .map(|reason| format!("suppressed: {reason}"))
}

/// The decision after the `attempts`-th attempt (this one counted) of an
/// email created at `created_at` failed transiently at `now`.
pub fn after_transient(queue: &Queue, created_at: i64, attempts: i64, now: i64) -> Decision {
    if let Some(max) = queue.max_attempts
        && attempts >= i64::from(max)
    {
        return Decision::GiveUp {
            reason: format!("attempt {attempts} of {max}, giving up"),
        };
    }
    if now.saturating_sub(created_at) >= millis(queue.max_age) {
        return Decision::GiveUp {
            reason: format!(
                "not delivered within {} (`queue.max_age`), giving up",
                crate::config::duration_text(queue.max_age)
            ),
        };
    }
    Decision::Retry {
        at: now + backoff_ms(queue.retry_backoff_secs, attempts),
    }
}

/// How long to wait after the `attempts`-th failed attempt:
/// `retry_backoff_secs × 2^(attempts−1)`, at most an hour, plus up to 10 %
/// jitter so that a crowd of deferred emails does not retry in lockstep.
pub fn backoff_ms(retry_backoff_secs: u64, attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 32) as u32 - 1;
    let base = retry_backoff_secs
        .saturating_mul(1u64 << exponent)
        .min(MAX_BACKOFF_SECS)
        * 1000;
    let jitter = if base >= 10 {
        fastrand::u64(0..=base / 10)
    } else {
        0
    };
    (base + jitter) as i64
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn backoff_doubles_and_is_capped() {
        for (attempts, base) in [
            (1, 60_000),
            (2, 120_000),
            (3, 240_000),
            (7, 3_600_000),
            (40, 3_600_000),
        ] {
            for _ in 0..50 {
                let wait = backoff_ms(60, attempts);
                assert!(
                    wait >= base && wait <= base + base / 10,
                    "attempt {attempts}: {wait}"
                );
            }
        }
        assert_eq!(backoff_ms(0, 3), 0);
    }

    #[test]
    fn transient_failures_retry_until_max_age() {
        let queue = Queue::default();
        let created = 1_000 * HOUR;
        // Many attempts within five days: still retried, never more than an hour and 10 % apart.
        match after_transient(&queue, created, 40, created + 24 * HOUR) {
            Decision::Retry { at } => assert!(at <= created + 24 * HOUR + HOUR + HOUR / 10),
            other => panic!("{other:?}"),
        }
        match after_transient(&queue, created, 2, created + 5 * 24 * HOUR) {
            Decision::GiveUp { reason } => assert_eq!(
                reason,
                "not delivered within 5d (`queue.max_age`), giving up"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn max_attempts_still_caps_when_set() {
        let queue = Queue {
            max_attempts: Some(2),
            ..Queue::default()
        };
        assert!(matches!(
            after_transient(&queue, 0, 1, 0),
            Decision::Retry { .. }
        ));
        assert_eq!(
            after_transient(&queue, 0, 2, 0),
            Decision::GiveUp {
                reason: "attempt 2 of 2, giving up".into()
            }
        );
    }
}
