//! `.crate` files on local disk.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BlobStore, StoreError, StoreResult};

/// Blobs under `root/ab/abcdef….crate`. A write goes to a temporary file
/// that is fsynced and then renamed into place, and the directory is fsynced
/// too, so a blob is either whole or absent after a crash.
///
/// Writes share a gate that the orphan sweep takes exclusively for each
/// file it checks, so a blob rewritten by a new upload is never deleted
/// between its age check and its removal.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    gate: Arc<RwLock<()>>,
}

impl FsBlobStore {
    /// Uses (and creates) `root`.
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(StoreError::backend)?;
        Ok(Self {
            root,
            gate: Arc::default(),
        })
    }

    fn path(&self, cksum: &str) -> StoreResult<PathBuf> {
        Ok(self.root.join(crate::blob_key(cksum)?))
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut suffix = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut suffix);
    let path = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, cksum: &str, bytes: Bytes) -> StoreResult<()> {
        let path = self.path(cksum)?;
        let gate = Arc::clone(&self.gate);
        tokio::task::spawn_blocking(move || {
            let _shared = gate.read().unwrap_or_else(PoisonError::into_inner);
            write_durably(&path, &bytes)
        })
        .await
        .map_err(StoreError::backend)?
        .map_err(StoreError::backend)
    }

    async fn get(&self, cksum: &str) -> StoreResult<Option<Bytes>> {
        let path = self.path(cksum)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn sweep(&self, keep: &HashSet<String>, cutoff: SystemTime) -> StoreResult<usize> {
        let (root, gate, keep) = (self.root.clone(), Arc::clone(&self.gate), keep.clone());
        tokio::task::spawn_blocking(move || sweep_dir(&root, &gate, &keep, cutoff))
            .await
            .map_err(StoreError::backend)?
            .map_err(StoreError::backend)
    }
}

/// Removes `root/xx/<cksum>.crate` files not in `keep`, and leftover
/// temporary files, last written before `cutoff`.
fn sweep_dir(
    root: &Path,
    gate: &RwLock<()>,
    keep: &HashSet<String>,
    cutoff: SystemTime,
) -> std::io::Result<usize> {
    let mut removed = 0;
    for dir in std::fs::read_dir(root)? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            let name = file.file_name();
            let name = name.to_string_lossy();
            let orphan = match name.strip_suffix(".crate") {
                Some(cksum) => !keep.contains(cksum),
                None => name.starts_with(".tmp-"),
            };
            if !orphan {
                continue;
            }
            let _exclusive = gate.write().unwrap_or_else(PoisonError::into_inner);
            let modified = match std::fs::metadata(file.path()).and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if modified < cutoff {
                match std::fs::remove_file(file.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[tokio::test]
    async fn sweep_keeps_referenced_and_young_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        for c in ['a', 'b', 'c'] {
            blobs.put(&key(c), Bytes::from_static(b"x")).await.unwrap();
        }
        let keep: HashSet<String> = [key('a')].into_iter().collect();
        // Everything was written just now: a cutoff in the past keeps all,
        // referenced or not.
        let past = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(blobs.sweep(&keep, past).await.unwrap(), 0);
        // A cutoff in the future makes every unreferenced blob old enough.
        let future = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(blobs.sweep(&keep, future).await.unwrap(), 2);
        assert!(blobs.get(&key('a')).await.unwrap().is_some());
        assert!(blobs.get(&key('b')).await.unwrap().is_none());
        // A rewrite of swept bytes brings the blob back.
        blobs
            .put(&key('b'), Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(blobs.get(&key('b')).await.unwrap().is_some());
        // Leftover temporary files of crashed writes go too.
        std::fs::write(dir.path().join("aa").join(".tmp-dead"), b"partial").unwrap();
        assert_eq!(blobs.sweep(&keep, future).await.unwrap(), 2);
    }
}
