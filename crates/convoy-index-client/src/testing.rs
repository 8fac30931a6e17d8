//! A static sparse index on 127.0.0.1, for tests.
//!
//! It serves fixed files from memory, one thread, `Connection: close`: just
//! enough HTTP for reqwest and cargo, with nothing to configure. A file not
//! in the map is a 404, which a sparse index reads as "no such crate".

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use convoy_protocol::index::{IndexPackage, RegistryConfig, index_path, render_index_file};

/// Served files by path: status and body.
type Files = Arc<Mutex<BTreeMap<String, (u16, Vec<u8>)>>>;

/// A running fixture; it stops when the test process ends.
#[derive(Debug, Clone)]
pub struct StaticIndex {
    /// `http://127.0.0.1:<port>/`.
    pub base: String,
    files: Files,
}

impl StaticIndex {
    /// Starts serving on an ephemeral port, with a `config.json` whose `dl`
    /// points at `/dl`.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}/", listener.local_addr()?);
        let files: Files = Arc::default();
        let served = Arc::clone(&files);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_owned();
                let found = served.lock().ok().and_then(|f| f.get(&path).cloned());
                let (status, body) = found.unwrap_or((404, Vec::new()));
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        let index = Self { base, files };
        let config = RegistryConfig {
            dl: format!("{}dl", index.base),
            api: None,
            auth_required: false,
            convoy_staging: None,
            convoy_companions: None,
        };
        index.set_file(
            RegistryConfig::NAME,
            200,
            serde_json::to_vec(&config).unwrap_or_default(),
        );
        Ok(index)
    }

    /// The index URL to give cargo or [`crate::SparseIndex`].
    pub fn index_url(&self) -> String {
        format!("sparse+{}", self.base)
    }

    /// Serves `body` with `status` at `path` (no leading `/`).
    pub fn set_file(&self, path: &str, status: u16, body: Vec<u8>) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(path.to_owned(), (status, body));
        }
    }

    /// Publishes one version: its index line and, when given, its `.crate`
    /// at cargo's default download path.
    pub fn add_version(&self, name: &str, vers: &str, cksum: &str, crate_file: Option<Vec<u8>>) {
        let line = IndexPackage {
            name: name.to_owned(),
            vers: vers.to_owned(),
            deps: Vec::new(),
            cksum: cksum.to_owned(),
            features: BTreeMap::new(),
            features2: None,
            yanked: false,
            links: None,
            rust_version: None,
            v: Some(2),
            pubtime: None,
        };
        let path = index_path(name);
        let mut existing = self
            .files
            .lock()
            .ok()
            .and_then(|f| f.get(&path).map(|(_, b)| b.clone()))
            .unwrap_or_default();
        existing.extend(render_index_file([&line]));
        self.set_file(&path, 200, existing);
        if let Some(file) = crate_file {
            self.set_file(&format!("dl/{name}/{vers}/download"), 200, file);
        }
    }
}
