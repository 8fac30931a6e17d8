//! Cargo's own cache of a sparse registry, read under `--offline` so that
//! Convoy works offline exactly where cargo does: with the index files and
//! `.crate` files cargo has already fetched.
//!
//! Cargo 1.95 keeps, under `$CARGO_HOME/registry/`:
//! - `index/<host>-<hash>/config.json`: the registry's `config.json`;
//! - `index/<host>-<hash>/.cache/<index path>`: one file per crate, a
//!   version byte (3), the index format version (`u32` LE), the HTTP cache
//!   header, a NUL, then for each version its number, a NUL, its index line
//!   and a NUL;
//! - `cache/<host>-<hash>/<name>-<version>.crate`: downloads.
//!
//! `<hash>` is cargo's stable hash of the source id. Rather than recompute
//! it, the directory is found by its `<host>-` prefix and, when several
//! registries share a host (loopback ports), by the authority its
//! `config.json` names.

use std::path::{Path, PathBuf};

use convoy_protocol::index::index_path;

/// The cache format versions this reader understands.
const CACHE_VERSIONS: [u8; 2] = [3, 4];

/// One registry's part of cargo's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CargoCache {
    index_dir: PathBuf,
    crate_dir: PathBuf,
}

impl CargoCache {
    /// The cache of the registry at `base` (`http(s)://…/`), if cargo has
    /// one under `cargo_home`.
    pub(crate) fn find(cargo_home: &Path, base: &str) -> Option<Self> {
        let url = base.split_once("://").map(|(_, rest)| rest)?;
        let authority = url.split('/').next()?;
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(host, _)| host);
        let prefix = format!("{host}-");
        let root = cargo_home.join("registry").join("index");
        let mut candidates: Vec<(PathBuf, bool, std::time::SystemTime)> = std::fs::read_dir(&root)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| {
                let dir = e.path();
                let config = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
                let same_authority = config.contains(&format!("//{authority}/"))
                    || config.contains(&format!("//{authority}\""));
                let modified = std::fs::metadata(dir.join(".cache"))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (dir, same_authority, modified)
            })
            .collect();
        // The registry's own directory first, then the freshest.
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        let (index_dir, _, _) = candidates.into_iter().next()?;
        let crate_dir = cargo_home
            .join("registry")
            .join("cache")
            .join(index_dir.file_name()?);
        Some(Self {
            index_dir,
            crate_dir,
        })
    }

    /// The cached `config.json`.
    pub(crate) fn config(&self) -> Option<Vec<u8>> {
        std::fs::read(self.index_dir.join("config.json")).ok()
    }

    /// The cached index file of `name`, as the registry served it (one
    /// line per version); `None` when cargo never fetched it.
    pub(crate) fn index_file(&self, name: &str) -> Option<Vec<u8>> {
        let raw = std::fs::read(self.index_dir.join(".cache").join(index_path(name))).ok()?;
        parse_cache_file(&raw)
    }

    /// A cached `.crate`.
    pub(crate) fn download(&self, name: &str, vers: &str) -> Option<Vec<u8>> {
        std::fs::read(self.crate_dir.join(format!("{name}-{vers}.crate"))).ok()
    }
}

/// The index lines of one `.cache` file, `\n`-terminated.
fn parse_cache_file(raw: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = raw.split_first()?;
    if !CACHE_VERSIONS.contains(&version) || rest.len() < 4 {
        return None;
    }
    let mut parts = rest[4..].split(|b| *b == 0);
    // The HTTP cache header (etag or last-modified).
    parts.next()?;
    let mut out = Vec::new();
    while let Some(vers) = parts.next() {
        if vers.is_empty() {
            break;
        }
        let line = parts.next()?;
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cache_file(lines: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = vec![3u8];
        raw.extend_from_slice(&2u32.to_le_bytes());
        raw.extend_from_slice(b"etag: \"x\"\0");
        for (vers, line) in lines {
            raw.extend_from_slice(vers.as_bytes());
            raw.push(0);
            raw.extend_from_slice(line.as_bytes());
            raw.push(0);
        }
        raw
    }

    #[test]
    fn reads_cargo_cache_files() {
        let raw = cache_file(&[("1.0.0", "{\"a\":1}"), ("1.1.0", "{\"b\":2}")]);
        assert_eq!(
            parse_cache_file(&raw).unwrap(),
            b"{\"a\":1}\n{\"b\":2}\n".to_vec()
        );
        assert_eq!(parse_cache_file(&[9, 0, 0, 0, 0]), None);
        assert_eq!(parse_cache_file(&[]), None);
    }

    #[test]
    fn finds_the_registry_among_same_host_dirs() {
        let home = tempfile::tempdir().unwrap();
        let index = home.path().join("registry/index");
        for (dir, dl) in [
            ("127.0.0.1-aaaa", "http://127.0.0.1:4000/dl"),
            ("127.0.0.1-bbbb", "http://127.0.0.1:5000/api/v1/crates"),
        ] {
            std::fs::create_dir_all(index.join(dir).join(".cache/3/a")).unwrap();
            std::fs::write(
                index.join(dir).join("config.json"),
                format!("{{\"dl\":\"{dl}\"}}"),
            )
            .unwrap();
        }
        std::fs::write(
            index.join("127.0.0.1-bbbb/.cache/3/a/abc"),
            cache_file(&[("0.1.0", "{\"name\":\"abc\"}")]),
        )
        .unwrap();
        let cache = CargoCache::find(home.path(), "http://127.0.0.1:5000/index/").unwrap();
        assert!(cache.index_dir.ends_with("127.0.0.1-bbbb"));
        assert_eq!(cache.index_file("abc").unwrap(), b"{\"name\":\"abc\"}\n");
        assert_eq!(cache.index_file("abd"), None);
        assert!(CargoCache::find(home.path(), "https://other.example/").is_none());
    }
}
