//! `.crate` files on local disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BlobStore, StoreError, StoreResult};

/// Blobs under `root/ab/abcdef….crate`. A write goes to a temporary file
/// that is fsynced and then renamed into place, and the directory is fsynced
/// too, so a blob is either whole or absent after a crash.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Uses (and creates) `root`.
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(StoreError::backend)?;
        Ok(Self { root })
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
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
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
}
