//! Network fixtures between a client and a registry, for tests of what
//! cargo's `[http]` settings mean: a TLS front whose CA is made at test
//! time, and a forward proxy that records what passed through it. Both run
//! on 127.0.0.1 with ephemeral ports, on a runtime of their own, and stop
//! when dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A runtime serving one listener until dropped.
struct Background {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    fn new(name: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            runtime: Some(runtime),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("runtime")
    }

    fn listen(&self) -> (TcpListener, u16) {
        let std = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std.set_nonblocking(true).expect("nonblocking");
        let port = std.local_addr().expect("addr").port();
        let _entered = self.runtime().enter();
        (TcpListener::from_std(std).expect("listener"), port)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An HTTPS front for a plain-HTTP backend, with a certificate for
/// `127.0.0.1` and `localhost` signed by a CA generated for this test only:
/// a client reaches the backend through it only if it trusts
/// [`TlsFront::ca_file`].
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    ca_file: PathBuf,
    backend: Arc<Mutex<Option<String>>>,
    _background: Background,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    /// Listens now, so the URL is known before the backend starts (it must
    /// be told its public URL); forwards once [`TlsFront::forward_to`] is
    /// called.
    pub fn bind() -> Self {
        let (ca_pem, leaf_der, key_der) = test_ca();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("convoy-test-ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(leaf_der)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
            )
            .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let background = Background::new("convoy-tls-front");
        let (listener, port) = background.listen();
        let backend: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&backend);
        background.runtime().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = shared.lock().expect("backend").clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA fails the
                    // handshake; that is the point, not an error here.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Some(backend) = backend else { return };
                    let Ok(mut upstream) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}"),
            ca_file,
            backend,
            _background: background,
            _dir: dir,
        }
    }

    /// Forwards every later connection to `backend` (`http://host:port` or
    /// `host:port`).
    pub fn forward_to(&self, backend: &str) {
        let addr = backend.trim_start_matches("http://").trim_end_matches('/');
        *self.backend.lock().expect("backend") = Some(addr.to_owned());
    }

    /// The PEM file of the CA that signed the front's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

/// A CA made for one test, and a leaf for `127.0.0.1`/`localhost` it
/// signed: (CA PEM, leaf DER, leaf PKCS#8 key DER).
fn test_ca() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Convoy test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("leaf certificate");
    (
        ca_cert.pem(),
        leaf_cert.der().to_vec(),
        leaf_key.serialize_der(),
    )
}

/// A forward HTTP proxy: `CONNECT host:port` tunnels (for `https://`) and
/// absolute-form requests (`GET http://host/path`, for `http://`). Every
/// request is recorded as `METHOD TARGET`, and each connection carries one
/// request (`Connection: close`), so that none goes unrecorded.
pub struct ForwardProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
    _background: Background,
}

impl ForwardProxy {
    /// Starts the proxy.
    pub fn start() -> Self {
        let background = Background::new("convoy-forward-proxy");
        let (listener, port) = background.listen();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let shared = Arc::clone(&seen);
        background.runtime().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = proxy_one(stream, seen).await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            _background: background,
        }
    }

    /// `host:port`, as `http.proxy` takes it.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Every request so far, as `METHOD TARGET`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("seen").clone()
    }

    /// Forgets what was seen so far.
    pub fn clear(&self) {
        self.seen.lock().expect("seen").clear();
    }
}

async fn proxy_one(stream: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut headers = Vec::new();
    let mut head_len = request_line.len();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        head_len += line.len();
        if head_len > 64 * 1024 {
            return Ok(());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        headers.push(line);
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(());
    };
    seen.lock()
        .expect("seen")
        .push(format!("{method} {target}"));
    if method.eq_ignore_ascii_case("CONNECT") {
        let mut upstream = TcpStream::connect(target).await?;
        let leftover = reader.buffer().to_vec();
        let mut client = reader.into_inner();
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        upstream.write_all(&leftover).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let Some(rest) = target.strip_prefix("http://") else {
        let mut client = reader.into_inner();
        client
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut upstream = TcpStream::connect(authority).await?;
    let mut head = format!("{method} {path} {version}\r\n");
    for line in &headers {
        let name = line.split(':').next().unwrap_or("").trim();
        if [
            "connection",
            "proxy-connection",
            "keep-alive",
            "proxy-authorization",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        head.push_str(line);
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes()).await?;
    let leftover = reader.buffer().to_vec();
    upstream.write_all(&leftover).await?;
    let mut client = reader.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
