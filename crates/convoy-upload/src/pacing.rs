//! Client-side token buckets, mirroring the registry's own.
//!
//! crates.io limits publishes per user with two token buckets (new crates:
//! burst 5, one more every 10 minutes; new versions: burst 30, one more
//! every minute) and answers 429 beyond them. Pacing to the same buckets
//! means a large release waits politely instead of failing half-way.
//!
//! A bucket hands out *reservations*: taking a token may drive the balance
//! below zero, and the caller is told how long to wait for its turn. Waiters
//! are therefore served in the order they asked, and none can starve.
//!
//! The buckets start full: Convoy cannot know what the same account
//! published just before, so a run right after another one may still meet a
//! 429, which the upload loop then honours.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaceLimit {
    /// How many uploads may go back to back.
    pub burst: u32,
    /// How long it takes to earn one more.
    pub refill: Duration,
}

/// The two buckets crates.io keeps per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaceLimits {
    /// First version of a crate the registry does not have yet.
    pub new_crates: PaceLimit,
    /// Another version of a crate the registry has.
    pub new_versions: PaceLimit,
}

impl PaceLimits {
    /// crates.io's published defaults (`src/config/publish_limits.rs`).
    pub const CRATES_IO: Self = Self {
        new_crates: PaceLimit {
            burst: 5,
            refill: Duration::from_secs(10 * 60),
        },
        new_versions: PaceLimit {
            burst: 30,
            refill: Duration::from_secs(60),
        },
    };
}

/// Which bucket an upload draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceKind {
    /// The registry has no version of this crate yet.
    NewCrate,
    /// The registry has other versions of this crate.
    NewVersion,
}

/// A source of "now", so the buckets can be tested without sleeping.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// One token bucket. `tokens` may be negative: that many reservations are
/// already queued for future refills.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    limit: PaceLimit,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(limit: PaceLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            updated: now,
        }
    }

    /// Takes one token and returns how long to wait until it is really
    /// earned (zero when the bucket had one).
    fn reserve(&mut self, now: Instant) -> Duration {
        let per_token = self.limit.refill.as_secs_f64();
        if per_token <= 0.0 {
            return Duration::ZERO;
        }
        let earned = now.saturating_duration_since(self.updated).as_secs_f64() / per_token;
        self.tokens = (self.tokens + earned).min(f64::from(self.limit.burst));
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens * per_token).unwrap_or(Duration::MAX)
        }
    }
}

/// Both buckets behind a lock, shared by every upload of a run.
pub struct Pacer {
    clock: Box<dyn Clock>,
    buckets: Mutex<(Bucket, Bucket)>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

impl Pacer {
    /// Full buckets of the given shapes, timed by `clock`.
    pub fn new(limits: PaceLimits, clock: Box<dyn Clock>) -> Self {
        let now = clock.now();
        Self {
            buckets: Mutex::new((
                Bucket::new(limits.new_crates, now),
                Bucket::new(limits.new_versions, now),
            )),
            clock,
        }
    }

    /// Reserves one upload of `kind`; the caller sleeps for the returned
    /// duration before uploading.
    pub fn reserve(&self, kind: PaceKind) -> Duration {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        match kind {
            PaceKind::NewCrate => buckets.0.reserve(now),
            PaceKind::NewVersion => buckets.1.reserve(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A clock that moves only when told to.
    #[derive(Clone)]
    struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }
        fn advance(&self, by: Duration) {
            let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            *now += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    fn pacer() -> (Pacer, FakeClock) {
        let clock = FakeClock::new();
        (
            Pacer::new(PaceLimits::CRATES_IO, Box::new(clock.clone())),
            clock,
        )
    }

    #[test]
    fn new_crates_burst_five_then_one_per_ten_minutes() {
        let (pacer, clock) = pacer();
        for _ in 0..5 {
            assert_eq!(pacer.reserve(PaceKind::NewCrate), Duration::ZERO);
        }
        // Reservations queue up behind each other.
        assert_eq!(pacer.reserve(PaceKind::NewCrate), 10 * MIN);
        assert_eq!(pacer.reserve(PaceKind::NewCrate), 20 * MIN);
        // After waiting out both, the third queued one is 10 minutes away.
        clock.advance(20 * MIN);
        assert_eq!(pacer.reserve(PaceKind::NewCrate), 10 * MIN);
    }

    #[test]
    fn new_versions_burst_thirty_then_one_per_minute() {
        let (pacer, clock) = pacer();
        for _ in 0..30 {
            assert_eq!(pacer.reserve(PaceKind::NewVersion), Duration::ZERO);
        }
        assert_eq!(pacer.reserve(PaceKind::NewVersion), MIN);
        clock.advance(MIN);
        // The minute paid for the queued reservation, not for a new one.
        assert_eq!(pacer.reserve(PaceKind::NewVersion), MIN);
        clock.advance(10 * MIN);
        assert_eq!(pacer.reserve(PaceKind::NewVersion), Duration::ZERO);
    }

    #[test]
    fn buckets_are_independent() {
        let (pacer, _clock) = pacer();
        for _ in 0..5 {
            pacer.reserve(PaceKind::NewCrate);
        }
        assert!(pacer.reserve(PaceKind::NewCrate) > Duration::ZERO);
        assert_eq!(pacer.reserve(PaceKind::NewVersion), Duration::ZERO);
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let (pacer, clock) = pacer();
        clock.advance(24 * 60 * MIN);
        for _ in 0..5 {
            assert_eq!(pacer.reserve(PaceKind::NewCrate), Duration::ZERO);
        }
        assert_eq!(pacer.reserve(PaceKind::NewCrate), 10 * MIN);
    }

    #[test]
    fn partial_refill_shortens_the_wait() {
        let (pacer, clock) = pacer();
        for _ in 0..5 {
            pacer.reserve(PaceKind::NewCrate);
        }
        clock.advance(4 * MIN);
        let wait = pacer.reserve(PaceKind::NewCrate);
        assert!(
            wait.abs_diff(6 * MIN) < Duration::from_millis(1),
            "{wait:?}"
        );
    }

    #[test]
    fn zero_refill_never_waits() {
        let clock = FakeClock::new();
        let limit = PaceLimit {
            burst: 0,
            refill: Duration::ZERO,
        };
        let pacer = Pacer::new(
            PaceLimits {
                new_crates: limit,
                new_versions: limit,
            },
            Box::new(clock),
        );
        assert_eq!(pacer.reserve(PaceKind::NewCrate), Duration::ZERO);
    }
}
