//! A small HTTP load balancer for scale-out tests: every request (not every
//! connection) goes to the next node in turn, the way a balancer in front
//! of stateless nodes spreads cargo's keep-alive traffic. A node that
//! refuses the connection is skipped, as nginx's `proxy_next_upstream
//! error` does; nothing else is retried, so a node that dies mid-request
//! gives the client the error a real balancer would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

struct Shared {
    nodes: RwLock<Vec<String>>,
    next: AtomicUsize,
    hits: RwLock<Vec<AtomicUsize>>,
    client: reqwest::Client,
}

/// A running balancer on 127.0.0.1; stops when dropped.
pub struct Balancer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "upgrade",
];

fn hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let nodes = shared
        .nodes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for _ in 0..nodes.len() {
        let i = shared.next.fetch_add(1, Ordering::SeqCst) % nodes.len();
        let mut out = shared
            .client
            .request(parts.method.clone(), format!("{}{path}", nodes[i]))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                out = out.header(name, value);
            }
        }
        match out.send().await {
            Ok(resp) => {
                if let Some(h) = shared
                    .hits
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(i)
                {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.unwrap_or_default();
                let mut response = Response::new(Body::from(bytes));
                *response.status_mut() = status;
                for (name, value) in &headers {
                    if !hop_by_hop(name) {
                        response.headers_mut().append(name, value.clone());
                    }
                }
                return response;
            }
            Err(e) if e.is_connect() => continue,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")).into_response();
            }
        }
    }
    (StatusCode::BAD_GATEWAY, "no node answered").into_response()
}

impl Balancer {
    /// Listens on an ephemeral port, with no nodes yet (so that nodes can
    /// be started with `--public-url` set to [`Balancer::url`]).
    pub fn bind() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            nodes: RwLock::default(),
            next: AtomicUsize::new(0),
            hits: RwLock::default(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        {
            let _entered = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new()
                .fallback(forward)
                .with_state(Arc::clone(&shared));
            runtime.spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        }
        Self {
            url,
            shared,
            shutdown: Some(tx),
            runtime: Some(runtime),
        }
    }

    /// Sends requests to `nodes` (`http://…` roots) from now on.
    pub fn set_nodes(&self, nodes: Vec<String>) {
        *self
            .shared
            .hits
            .write()
            .unwrap_or_else(PoisonError::into_inner) =
            nodes.iter().map(|_| AtomicUsize::new(0)).collect();
        *self
            .shared
            .nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner) = nodes;
    }

    /// How many requests each node answered.
    pub fn hits(&self) -> Vec<usize> {
        self.shared
            .hits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|h| h.load(Ordering::SeqCst))
            .collect()
    }

    /// `sparse+http://…/index/`.
    pub fn index_url(&self) -> String {
        format!("sparse+{}/index/", self.url)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
