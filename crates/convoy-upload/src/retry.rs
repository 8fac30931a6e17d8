//! When to try again: `Retry-After` and exponential backoff with jitter.

use std::time::Duration;

/// Shared with the index readers, so that every Convoy client reads
/// `Retry-After` and backs off the same way.
pub(crate) use convoy_index_client::{backoff, retry_after_header};

/// A little jitter added to a server-given wait, so that every upload told
/// "retry in 1 s" does not come back in the same millisecond.
pub(crate) fn jitter(up_to: Duration) -> Duration {
    up_to.mul_f64(rand::random_range(0.0..1.0))
}
