//! Per-user publish rate limiting, as crates.io does it: a token bucket per
//! user that refills at a steady rate. A refused publish gets 429 with
//! `Retry-After`, which is what a well-behaved release tool paces itself by.
//!
//! Buckets live in memory. That is right for the embedded registry, which
//! is one process; a replicated deployment would keep them in the shared
//! store instead.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use convoy_store::UserId;

/// A bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many publishes may happen back to back.
    pub burst: u32,
    /// How long it takes to earn one more.
    pub refill: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<UserId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// Takes one token for `user`, or says how long until one is available.
    pub(crate) fn take(&self, limit: RateLimit, user: UserId) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(user).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            updated: now,
        });
        let per_token = limit.refill.as_secs_f64().max(f64::EPSILON);
        let earned = now.duration_since(bucket.updated).as_secs_f64() / per_token;
        bucket.tokens = (bucket.tokens + earned).min(f64::from(limit.burst));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * per_token))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_waits() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            burst: 2,
            refill: Duration::from_secs(60),
        };
        assert!(limiter.take(limit, 1).is_ok());
        assert!(limiter.take(limit, 1).is_ok());
        let wait = limiter.take(limit, 1).expect_err("bucket empty");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.take(limit, 2).is_ok(), "buckets are per user");
    }
}
