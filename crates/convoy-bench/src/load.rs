//! A small HTTP/1.1 load generator over hyper's connection-level client:
//! one keep-alive connection per task, one request in flight per connection,
//! nothing pooled or shared between connections, so that the client costs
//! as little CPU as possible on a machine it shares with the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

/// No single request may take longer than this; the whole run stays bounded.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens one keep-alive HTTP/1.1 connection.
pub async fn connect<B>(addr: SocketAddr) -> anyhow::Result<SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    anyhow::ensure!(addr.ip().is_loopback(), "refusing non-loopback {addr}");
    let stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response.
pub async fn send<B>(
    sender: &mut SendRequest<B>,
    req: Request<B>,
) -> anyhow::Result<(StatusCode, Bytes)>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let fut = async {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    timeout(REQUEST_TIMEOUT, fut)
        .await
        .context("request timed out")?
}

/// A GET over a fresh connection, for setup steps.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut sender = connect::<Empty<Bytes>>(addr).await?;
    let req = Request::get(path)
        .header(header::HOST, addr.to_string())
        .body(Empty::new())?;
    send(&mut sender, req).await
}

/// What one measured phase did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Successful requests inside the measured window.
    pub ok: u64,
    /// Failed requests (status other than 200, I/O errors, timeouts).
    pub errors: u64,
    /// Length of the measured window.
    pub seconds: f64,
    /// `ok / seconds`.
    pub per_second: f64,
    /// Median latency of successful requests.
    pub p50_ms: f64,
    /// 99th percentile latency of successful requests.
    pub p99_ms: f64,
    /// Response body bytes of successful requests.
    pub bytes: u64,
    /// Connections re-opened after the peer closed one.
    pub reconnects: u64,
    /// The first failure, to tell a broken run from a slow one.
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    bytes: u64,
    reconnects: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    fn success(&mut self, bytes: usize, latency: Duration) {
        self.ok += 1;
        self.bytes += bytes as u64;
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.reconnects += other.reconnects;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn report(mut self, seconds: f64) -> Report {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
            f64::from(self.latencies_us[i]) / 1000.0
        };
        Report {
            ok: self.ok,
            errors: self.errors,
            seconds,
            per_second: if seconds > 0.0 {
                self.ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            bytes: self.bytes,
            reconnects: self.reconnects,
            first_error: self.first_error,
        }
    }
}

/// GETs of `paths`, round robin, from `connections` keep-alive connections
/// for `warmup + duration`; only the last `duration` counts.
pub struct Reads {
    /// Servers to spread the connections over, round robin.
    pub addrs: Vec<SocketAddr>,
    pub paths: Arc<Vec<String>>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Reads {
    pub async fn run(&self) -> anyhow::Result<Report> {
        anyhow::ensure!(!self.paths.is_empty(), "nothing to read");
        anyhow::ensure!(!self.addrs.is_empty(), "no server to read from");
        let measure_from = Instant::now() + self.warmup;
        let end = measure_from + self.duration;
        let mut tasks = JoinSet::new();
        for c in 0..self.connections {
            let (addr, paths) = (self.addrs[c % self.addrs.len()], Arc::clone(&self.paths));
            // Connections start at different files, as independent clients.
            let first = c * 7919 % paths.len();
            tasks.spawn(read_loop(addr, paths, first, measure_from, end));
        }
        let mut total = Tally::default();
        while let Some(tally) = tasks.join_next().await {
            total.merge(tally?);
        }
        Ok(total.report(self.duration.as_secs_f64()))
    }
}

async fn read_loop(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    first: usize,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let host = addr.to_string();
    let mut tally = Tally::default();
    let mut next = first;
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    while Instant::now() < end {
        let conn = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    tally.error(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if conn.ready().await.is_err() {
            // The server closed the connection between requests (nginx's
            // keepalive_requests, say): not a failed request.
            sender = None;
            tally.reconnects += 1;
            continue;
        }
        let path = &paths[next % paths.len()];
        next += 1;
        let req = match Request::get(path.as_str())
            .header(header::HOST, host.as_str())
            .body(Empty::new())
        {
            Ok(req) => req,
            Err(e) => {
                tally.error(e);
                break;
            }
        };
        let started = Instant::now();
        let result = send(conn, req).await;
        let done = Instant::now();
        let counted = done >= measure_from && done < end;
        match result {
            Ok((StatusCode::OK, body)) if counted => tally.success(body.len(), done - started),
            Ok((StatusCode::OK, _)) => {}
            Ok((status, _)) if counted => tally.error(format!("GET {path}: {status}")),
            Ok(_) => {}
            Err(e) => {
                sender = None;
                if counted {
                    tally.error(format!("GET {path}: {e:#}"));
                }
            }
        }
    }
    tally
}

/// PUT `/api/v1/crates/new` of pre-built bodies from `clients` keep-alive
/// connections, until every body is sent or `limit` has passed.
pub struct Publishes {
    /// Servers to spread the clients over, round robin.
    pub addrs: Vec<SocketAddr>,
    pub token: String,
    pub bodies: Arc<Vec<Bytes>>,
    pub clients: usize,
    pub limit: Duration,
}

impl Publishes {
    pub async fn run(&self) -> anyhow::Result<Report> {
        let started = Instant::now();
        let deadline = started + self.limit;
        anyhow::ensure!(!self.addrs.is_empty(), "no server to publish to");
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for c in 0..self.clients {
            let (addr, token, bodies, next) = (
                self.addrs[c % self.addrs.len()],
                self.token.clone(),
                Arc::clone(&self.bodies),
                Arc::clone(&next),
            );
            tasks.spawn(publish_loop(addr, token, bodies, next, deadline));
        }
        let mut total = Tally::default();
        let mut last_done = started;
        while let Some(result) = tasks.join_next().await {
            let (tally, done) = result?;
            last_done = last_done.max(done);
            total.merge(tally);
        }
        Ok(total.report((last_done - started).as_secs_f64()))
    }
}

async fn publish_loop(
    addr: SocketAddr,
    token: String,
    bodies: Arc<Vec<Bytes>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> (Tally, Instant) {
    let host = addr.to_string();
    let mut tally = Tally::default();
    let mut last_done = Instant::now();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { break };
        let conn = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    tally.error(format!("{e:#}"));
                    break;
                }
            },
        };
        let req = match Request::builder()
            .method(Method::PUT)
            .uri("/api/v1/crates/new")
            .header(header::HOST, host.as_str())
            .header(header::AUTHORIZATION, token.as_str())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(body.clone()))
        {
            Ok(req) => req,
            Err(e) => {
                tally.error(e);
                break;
            }
        };
        let started = Instant::now();
        let result = send(conn, req).await;
        last_done = Instant::now();
        match result {
            Ok((StatusCode::OK, resp)) => tally.success(resp.len(), last_done - started),
            Ok((status, resp)) => tally.error(format!(
                "publish #{i}: {status}: {}",
                String::from_utf8_lossy(&resp)
            )),
            Err(e) => {
                sender = None;
                tally.error(format!("publish #{i}: {e:#}"));
            }
        }
    }
    (tally, last_done)
}
