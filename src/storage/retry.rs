//! The one [`RetryPolicy`] as both S3 clients take it, and their timeouts.
//!
//! Both the S3 SDK (server-side copies) and object_store (listing, reading, streamed copies)
//! retry on their own; these translations give them the same numbers so a run behaves the
//! same on either path. Both use exponential backoff with jitter and retry throttling (503
//! SlowDown), other 5xx answers, timeouts and connection resets; neither retries a failed
//! precondition (412), which means the source changed and must be listed again.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// How long a TCP connection may take to open.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a response may stay silent before the attempt is abandoned (S3 keeps a long
/// CopyObject alive with whitespace, so this bounds stalls, not copy time).
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The SDK's "standard" strategy (exponential backoff, full jitter) with `policy`'s numbers.
pub(super) fn sdk_retry(policy: &RetryPolicy) -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(policy.max_attempts)
        .with_initial_backoff(policy.initial_backoff)
        .with_max_backoff(policy.max_backoff)
}

/// The SDK's timeouts.
pub(super) fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
}

/// object_store's retry configuration (exponential backoff with decorrelated jitter) with
/// `policy`'s numbers.
pub(super) fn object_store_retry(policy: &RetryPolicy) -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: policy.initial_backoff,
            max_backoff: policy.max_backoff,
            base: 2.0,
        },
        max_retries: policy.max_attempts.saturating_sub(1) as usize,
        retry_timeout: policy.max_backoff * policy.max_attempts,
    }
}
