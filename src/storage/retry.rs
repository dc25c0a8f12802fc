//! How failed requests are retried, as one documented value handed to both S3 clients.
//!
//! Both the S3 SDK (server-side copies) and object_store (listing, reading, streamed copies)
//! retry on their own; this policy gives them the same numbers so a run behaves the same on
//! either path. Both use exponential backoff with jitter and retry throttling (503 SlowDown),
//! other 5xx answers, timeouts and connection resets; neither retries a failed precondition
//! (412), which means the source changed and must be listed again.

use std::time::Duration;

/// Retry and timeout numbers for every request to an object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included. Default 10.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles each attempt (with jitter). Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest backoff between two attempts. Default 20 s.
    pub max_backoff: Duration,
    /// How long a TCP connection may take to open. Default 5 s.
    pub connect_timeout: Duration,
    /// How long a response may stay silent before the attempt is abandoned (S3 keeps a long
    /// CopyObject alive with whitespace, so this bounds stalls, not copy time). Default 120 s.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The SDK's "standard" strategy (exponential backoff, full jitter) with these numbers.
    pub(super) fn sdk_retry(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    /// The SDK's timeouts.
    pub(super) fn sdk_timeouts(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .build()
    }

    /// object_store's retry configuration (exponential backoff with decorrelated jitter).
    pub(super) fn object_store(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_attempts.saturating_sub(1) as usize,
            retry_timeout: self.max_backoff * self.max_attempts,
        }
    }
}
