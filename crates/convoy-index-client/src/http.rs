//! Cargo's sparse-index HTTP rules, which [`AsyncSparseIndex`] (and with it
//! the synchronous [`SparseIndex`] facade) follows so that Convoy reads a
//! registry exactly as cargo does: the same headers, the same meaning of
//! each status, the same retries.
//!
//! [`SparseIndex`]: crate::SparseIndex
//! [`AsyncSparseIndex`]: crate::AsyncSparseIndex

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use convoy_protocol::index::IndexPackage;

use crate::IndexError;

/// Sent with every index request: cargo's sparse protocol version.
pub(crate) const CARGO_PROTOCOL: (&str, &str) = ("cargo-protocol", "version=1");
/// How every Convoy client introduces itself unless `http.user-agent` says
/// otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("convoy/", env!("CARGO_PKG_VERSION"));
/// Sent with every index request, as cargo does.
pub(crate) const ACCEPT_TEXT: (&str, &str) = ("accept", "text/plain");
/// The longest server-given `Retry-After` an index read waits out; a
/// registry asking for more is treated like one that gave no hint, so a
/// misconfigured server cannot stall a release for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// When and how often a transient failure (429, 5xx, or no answer at all)
/// is retried.
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

/// The network settings of cargo's `[http]` and `[net]` tables that every
/// HTTP client in Convoy is built from ([`HttpConfig::client`]), so that
/// Convoy reaches a registry wherever cargo does: through the same proxy,
/// trusting the same certificates, with the same patience.
///
/// [`crate::CargoConfig`] reads it with cargo's precedence; the default is
/// cargo's defaults with no proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `http.proxy` (`CARGO_HTTP_PROXY`), in libcurl's `[scheme://]host[:port]`
    /// form; used for every request when set.
    pub proxy: Option<String>,
    /// `https_proxy`/`HTTPS_PROXY`, for `https://` requests when
    /// `http.proxy` is not set.
    pub https_proxy: Option<String>,
    /// `http_proxy` (lower case only, as curl reads it), for `http://`
    /// requests when `http.proxy` is not set.
    pub http_proxy: Option<String>,
    /// `all_proxy`/`ALL_PROXY`, for requests no other proxy setting covers.
    pub all_proxy: Option<String>,
    /// `no_proxy`/`NO_PROXY`: hosts reached directly, whichever proxy is set.
    pub no_proxy: Option<String>,
    /// `http.cainfo`: a PEM bundle trusted in addition to the platform's
    /// store (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub cainfo: Option<PathBuf>,
    /// `http.timeout`: the longest wait to connect, and the longest silence
    /// while reading an answer.
    pub timeout: Duration,
    /// `net.retry`: retries of a transient failure.
    pub retry: u32,
    /// `http.user-agent`, or [`DEFAULT_USER_AGENT`].
    pub user_agent: String,
    /// `--offline` or `net.offline`: readers answer from cargo's cache under
    /// `cargo_home` and never touch the network.
    pub offline: bool,
    /// `CARGO_HOME`, where the offline readers find cargo's cache.
    pub cargo_home: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            proxy: None,
            https_proxy: None,
            http_proxy: None,
            all_proxy: None,
            no_proxy: None,
            cainfo: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::CARGO.retries,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            offline: false,
            cargo_home: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A proxy URL may carry a password.
        let proxy = |p: &Option<String>| p.as_deref().map(redact_userinfo);
        f.debug_struct("HttpConfig")
            .field("proxy", &proxy(&self.proxy))
            .field("https_proxy", &proxy(&self.https_proxy))
            .field("http_proxy", &proxy(&self.http_proxy))
            .field("all_proxy", &proxy(&self.all_proxy))
            .field("no_proxy", &self.no_proxy)
            .field("cainfo", &self.cainfo)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .field("offline", &self.offline)
            .field("cargo_home", &self.cargo_home)
            .finish()
    }
}

/// Why an HTTP client could not be built from an [`HttpConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The `http.cainfo` file could not be read.
    #[error("failed to read the CA bundle `{}` named by `http.cainfo`", path.display())]
    Cainfo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `http.cainfo` file holds no certificate rustls accepts.
    #[error("the CA bundle `{}` named by `http.cainfo` holds no usable certificate", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A proxy setting is not a URL.
    #[error("proxy `{url}` is not a valid proxy URL")]
    Proxy {
        /// The setting, password hidden.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// TLS could not be set up.
    #[error("failed to set up TLS")]
    Tls(#[source] rustls::Error),
    /// The client could not be built.
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl HttpConfig {
    /// Retries and backoff for this configuration: `net.retry` retries,
    /// with cargo's waits.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retry,
            ..RetryPolicy::CARGO
        }
    }

    /// An async client with these settings. A read that stays silent for
    /// `http.timeout` fails, as a cargo transfer below its low-speed limit
    /// does.
    pub fn client(&self) -> Result<reqwest::Client, HttpError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent.as_str())
            .connect_timeout(self.timeout)
            .read_timeout(self.timeout)
            .use_preconfigured_tls(self.tls()?)
            // Only the proxies configured here, never reqwest's own reading
            // of the environment: cargo's rules differ from it.
            .no_proxy();
        for proxy in self.proxies()? {
            builder = builder.proxy(proxy);
        }
        builder.build().map_err(HttpError::Client)
    }

    /// The proxies to use, in reqwest's order of precedence.
    fn proxies(&self) -> Result<Vec<reqwest::Proxy>, HttpError> {
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        let make = |url: &str, f: fn(String) -> reqwest::Result<reqwest::Proxy>| {
            f(proxy_url(url))
                .map(|p| p.no_proxy(no_proxy()))
                .map_err(|source| HttpError::Proxy {
                    url: redact_userinfo(url),
                    source,
                })
        };
        let mut out = Vec::new();
        if let Some(proxy) = &self.proxy {
            out.push(make(proxy, reqwest::Proxy::all::<String>)?);
            return Ok(out);
        }
        if let Some(proxy) = &self.https_proxy {
            out.push(make(proxy, reqwest::Proxy::https::<String>)?);
        }
        if let Some(proxy) = &self.http_proxy {
            out.push(make(proxy, reqwest::Proxy::http::<String>)?);
        }
        if let Some(proxy) = &self.all_proxy {
            out.push(make(proxy, reqwest::Proxy::all::<String>)?);
        }
        Ok(out)
    }

    /// TLS trusting the platform's store plus `http.cainfo`.
    fn tls(&self) -> Result<rustls::ClientConfig, HttpError> {
        let mut roots = platform_roots().as_ref().clone();
        if let Some(path) = &self.cainfo {
            let pem = std::fs::read(path).map_err(|source| HttpError::Cainfo {
                path: path.clone(),
                source,
            })?;
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(HttpError::NoCertificates { path: path.clone() });
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(HttpError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// The platform's trust store, read once per process: the system bundle,
/// or `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, as OpenSSL (and so cargo)
/// reads them. Mozilla's roots stand in when the platform has none, so that
/// a bare container still reaches public registries.
fn platform_roots() -> &'static Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable entries are skipped, as OpenSSL skips them.
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(roots)
    })
}

/// libcurl's `host:port` means `http://host:port`.
fn proxy_url(setting: &str) -> String {
    if setting.contains("://") {
        setting.to_owned()
    } else {
        format!("http://{setting}")
    }
}

/// A URL with any `user:password@` replaced by `***@`.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_owned(),
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
#[allow(clippy::unwrap_used)]
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
    fn proxy_settings_read_as_curl_reads_them() {
        assert_eq!(proxy_url("127.0.0.1:3128"), "http://127.0.0.1:3128");
        assert_eq!(proxy_url("socks5://h:1"), "socks5://h:1");
        assert_eq!(
            redact_userinfo("http://user:pw@proxy:8080/x"),
            "http://***@proxy:8080/x"
        );
        assert_eq!(redact_userinfo("proxy:8080"), "proxy:8080");
        let config = HttpConfig {
            proxy: Some("http://u:secret@127.0.0.1:9".into()),
            ..HttpConfig::default()
        };
        assert!(!format!("{config:?}").contains("secret"));
        config.client().unwrap();
    }

    #[test]
    fn cainfo_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let config = HttpConfig {
            cainfo: Some(path.clone()),
            ..HttpConfig::default()
        };
        assert!(matches!(
            config.client(),
            Err(HttpError::NoCertificates { .. })
        ));
        let config = HttpConfig {
            cainfo: Some(dir.path().join("missing.pem")),
            ..HttpConfig::default()
        };
        assert!(matches!(config.client(), Err(HttpError::Cainfo { .. })));
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
