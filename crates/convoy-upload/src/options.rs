//! What the caller can tune, and the defaults that suit a release.

use std::time::Duration;

use crate::pacing::PaceLimits;

/// How [`upload`](crate::upload) behaves.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// How many `PUT`s may be in flight at once (`-j`). `0` is read as `1`.
    /// Index reads are cheap and run up to twice as wide, so that a slot is
    /// never idle waiting on a skip check.
    pub jobs: usize,
    /// Everything but the `PUT`: the index is still read, so skips and
    /// content mismatches are reported as a real run would.
    pub dry_run: bool,
    /// How long an uploaded version may take to appear in the index before
    /// the crate counts as failed (and its dependents are blocked). Cargo
    /// itself waits 60 s; crates.io is normally visible within seconds.
    pub visibility_timeout: Duration,
    /// How many times a transient failure (5xx, connection reset, timeout)
    /// is retried for one crate. Rate-limit answers (429) do not count:
    /// they are bounded by [`UploadOptions::max_rate_limit_wait`] instead,
    /// because waiting them out is the expected outcome, not a failure.
    pub max_retries: u32,
    /// First backoff after a transient failure; it doubles on each retry,
    /// with ±50 % jitter so concurrent uploads do not retry in lockstep.
    pub retry_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// The longest one crate may spend waiting on `Retry-After` in total.
    /// A registry asking for longer is reported as a failure with its
    /// message, so a rerun can finish the release later.
    pub max_rate_limit_wait: Duration,
    /// Timeout of one `PUT`, body included. A `.crate` may be 10 MiB.
    pub request_timeout: Duration,
    /// Client-side pacing, so Convoy waits instead of collecting 429s.
    pub pacing: Pacing,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            jobs: 4,
            dry_run: false,
            visibility_timeout: Duration::from_secs(60),
            max_retries: 4,
            retry_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(60 * 60),
            request_timeout: Duration::from_secs(300),
            pacing: Pacing::Auto,
        }
    }
}

/// Client-side rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// crates.io's published limits when the target is crates.io, nothing
    /// otherwise: other registries announce their limits through 429.
    #[default]
    Auto,
    /// No pacing; rely on 429 and `Retry-After` alone.
    Off,
    /// These limits, whatever the registry.
    Limits(PaceLimits),
}

impl Pacing {
    /// The limits that apply to a target.
    pub(crate) fn limits_for(self, is_crates_io: bool) -> Option<PaceLimits> {
        match self {
            Self::Auto => is_crates_io.then_some(PaceLimits::CRATES_IO),
            Self::Off => None,
            Self::Limits(limits) => Some(limits),
        }
    }
}
