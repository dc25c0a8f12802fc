//! The one retry/backoff policy: how many times an operation is attempted and how long to
//! wait between two attempts, as one documented value.
//!
//! Every component that retries takes a [`RetryPolicy`]: storage hands its numbers to the
//! S3 SDK and object_store (which wait by themselves), and the Snowflake client, the
//! RabbitMQ notification and the Delta commit loop wait [`RetryPolicy::wait_before`] each
//! attempt. The waits grow exponentially, are capped, and carry jitter so that many tasks
//! retrying at once spread out.

use std::hash::BuildHasher;
use std::time::Duration;

/// How an operation is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts, the first included. Default 10.
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles each later attempt (with jitter).
    /// Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts. Default 20 s.
    pub max_backoff: Duration,
}

/// The numbers of every request to an object store, and of the Snowflake SQL API.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (counted from 1): none before the first; before
    /// attempt N ≥ 2, `initial_backoff · 2^(N-2)` capped at `max_backoff`, scaled by a
    /// random factor in [0.5, 1].
    pub fn wait_before(&self, attempt: u32) -> Duration {
        let Some(retry) = attempt.checked_sub(2) else {
            return Duration::ZERO;
        };
        let delay = self
            .initial_backoff
            .saturating_mul(1 << retry.min(16))
            .min(self.max_backoff);
        jitter(delay)
    }
}

/// `delay` scaled by a random factor in [0.5, 1].
fn jitter(delay: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    delay.mul_f64(0.5 + 0.5 * (random as f64 / u64::MAX as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(2));
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        };
        assert_eq!(policy.wait_before(0), Duration::ZERO);
        assert_eq!(policy.wait_before(1), Duration::ZERO);
        for (attempt, full) in [(2, 1), (3, 2), (4, 4), (5, 5), (40, 5)] {
            let full = Duration::from_secs(full);
            let wait = policy.wait_before(attempt);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }
}
