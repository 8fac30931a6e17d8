//! Cargo's sparse-index HTTP rules, shared by the blocking [`SparseIndex`]
//! and the async [`AsyncSparseIndex`] so that both read a registry exactly
//! as cargo does: the same headers, the same meaning of each status, the
//! same retries.
//!
//! [`SparseIndex`]: crate::SparseIndex
//! [`AsyncSparseIndex`]: crate::AsyncSparseIndex

use std::time::{Duration, SystemTime};

use convoy_protocol::index::IndexPackage;

use crate::IndexError;

/// Sent with every index request: cargo's sparse protocol version.
pub(crate) const CARGO_PROTOCOL: (&str, &str) = ("cargo-protocol", "version=1");
/// Every Convoy client introduces itself the same way.
pub(crate) const USER_AGENT: &str = concat!("convoy/", env!("CARGO_PKG_VERSION"));
/// Sent with every index request, as cargo does.
pub(crate) const ACCEPT_TEXT: (&str, &str) = ("accept", "text/plain");
/// The longest server-given `Retry-After` an index read waits out; a
/// registry asking for more is treated like one that gave no hint, so a
/// misconfigured server cannot stall a release for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// When and how often a transient failure (429, 5xx, or for the async
/// client also no answer at all) is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The wait before the first retry; it doubles with each retry.
    pub base: Duration,
    /// The longest computed wait between two attempts.
    pub max: Duration,
}

impl RetryPolicy {
    /// Cargo's defaults: `net.retry = 3`, waits of a fraction of a second.
    pub const CARGO: Self = Self {
        retries: 3,
        base: Duration::from_millis(250),
        max: Duration::from_secs(2),
    };

    /// The wait before retry number `retry` (1-based): the registry's
    /// `Retry-After` when it gave a reasonable one, else [`backoff`].
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(after) if after <= MAX_RETRY_AFTER => after,
            _ => backoff(self.base, self.max, retry),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::CARGO
    }
}

/// The HTTP base (`http(s)://…/`, ending in `/`) of a `sparse+http(s)://…`
/// index URL.
pub fn sparse_http_base(index: &str) -> Result<String, IndexError> {
    let base = index
        .strip_prefix("sparse+")
        .filter(|b| b.starts_with("http://") || b.starts_with("https://"))
        .ok_or_else(|| IndexError::NotSparse {
            url: index.to_owned(),
        })?;
    let mut base = base.to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(base)
}

/// Maps a transport failure on `url` to [`IndexError::Network`].
pub(crate) fn network(url: &str) -> impl FnOnce(reqwest::Error) -> IndexError + '_ {
    move |source| IndexError::Network {
        url: url.to_owned(),
        source,
    }
}

/// Whether an answer with this status is worth retrying, as cargo sees it.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// What a final status means: `Ok(true)` for a body to read, `Ok(false)`
/// for "no such crate" (404, 410, 451, as cargo reads them), an error
/// otherwise.
pub(crate) fn classify(url: &str, status: u16) -> Result<bool, IndexError> {
    match status {
        200 => Ok(true),
        404 | 410 | 451 => Ok(false),
        401 | 403 => Err(IndexError::Unauthorized {
            url: url.to_owned(),
        }),
        status => Err(IndexError::Status {
            url: url.to_owned(),
            status,
        }),
    }
}

/// The versions in an index file. Lines that do not parse are skipped, as
/// cargo skips them, so one odd line does not hide a whole crate.
pub(crate) fn parse_index_file(body: &[u8]) -> Vec<IndexPackage> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<IndexPackage>(l).ok())
        .collect()
}

/// Reads a `Retry-After` value, which RFC 9110 allows as delay-seconds or as
/// an HTTP date (crates.io sends a date). A date in the past means "now".
/// Fractional seconds are accepted too, leniently. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer, when present and readable.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// The wait before retry number `retry` (1-based): `base · 2^(retry-1)`,
/// capped at `max`, times a random factor in `[0.5, 1.5)` so that clients
/// that failed together do not retry together.
pub fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1 << exp).min(max);
    let factor: f64 = rand::random_range(0.5..1.5);
    Duration::try_from_secs_f64(raw.as_secs_f64() * factor).unwrap_or(raw)
}

/// An error and its causes as one line, `outer: cause: root`, for reports
/// and messages that carry no error chain.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // reqwest repeats its inner error in its own message at times.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_seconds() {
        let now = at(1_000_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse_retry_after(date, at(784_111_777 - 90)),
            Some(Duration::from_secs(90))
        );
        // A date already passed means no wait.
        assert_eq!(
            parse_retry_after(date, at(784_111_777 + 5)),
            Some(Duration::ZERO)
        );
        // The obsolete formats RFC 9110 still requires readers to accept.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", at(784_111_777)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", at(784_111_770)),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(base, max, 1);
            assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(150));
            let third = backoff(base, max, 3);
            assert!(third >= Duration::from_millis(200) && third < Duration::from_millis(600));
            let late = backoff(base, max, 40);
            assert!(late >= Duration::from_millis(500) && late < Duration::from_millis(1500));
        }
    }

    #[test]
    fn retry_after_wins_unless_unreasonable() {
        let p = RetryPolicy::CARGO;
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert!(p.delay(1, Some(Duration::from_secs(3600))) < Duration::from_secs(1));
        assert!(p.delay(1, None) < Duration::from_secs(1));
    }

    #[test]
    fn statuses_mean_what_cargo_says() {
        assert!(matches!(classify("u", 200), Ok(true)));
        for s in [404, 410, 451] {
            assert!(matches!(classify("u", s), Ok(false)));
        }
        assert!(matches!(
            classify("u", 403),
            Err(IndexError::Unauthorized { .. })
        ));
        assert!(matches!(
            classify("u", 500),
            Err(IndexError::Status { status: 500, .. })
        ));
        assert!(is_transient_status(429) && is_transient_status(503));
        assert!(!is_transient_status(404));
    }
}
