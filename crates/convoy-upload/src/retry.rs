//! When to try again: `Retry-After` and exponential backoff with jitter.

use std::time::{Duration, SystemTime};

/// Reads a `Retry-After` value, which RFC 9110 allows as delay-seconds or as
/// an HTTP date (crates.io sends a date). A date in the past means "now".
/// Fractional seconds are accepted too, leniently. `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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

/// The wait before retry number `retry` (1-based): `base · 2^(retry-1)`,
/// capped at `max`, times a random factor in `[0.5, 1.5)` so that uploads
/// that failed together do not retry together.
pub(crate) fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1 << exp).min(max);
    let factor: f64 = rand::random_range(0.5..1.5);
    Duration::try_from_secs_f64(raw.as_secs_f64() * factor).unwrap_or(raw)
}

/// A little jitter added to a server-given wait, so that every upload told
/// "retry in 1 s" does not come back in the same millisecond.
pub(crate) fn jitter(up_to: Duration) -> Duration {
    up_to.mul_f64(rand::random_range(0.0..1.0))
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
}
