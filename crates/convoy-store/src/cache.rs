//! Hot blobs in memory.
//!
//! CI fleets download the same few `.crate` files over and over. A blob is
//! content-addressed and never changes, so a copy in memory can never be
//! stale, on any node: serving it is a hash lookup and a reference-count
//! bump, with no file system or network in the way.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Blob, BlobStore, StoreError, StoreResult};

/// Default memory for hot blobs: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Blobs larger than this are never kept: one huge crate must not evict
/// hundreds of ordinary ones.
const MAX_CACHED_BLOB: usize = 2 * 1024 * 1024;

/// A [`BlobStore`] that keeps recently read blobs in memory, up to a byte
/// budget, evicting the oldest first.
pub struct HotBlobs<B> {
    inner: B,
    budget: usize,
    cached: RwLock<Cached>,
}

#[derive(Default)]
struct Cached {
    blobs: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl<B: BlobStore> HotBlobs<B> {
    /// Wraps `inner` with a cache of at most `budget` bytes.
    pub fn new(inner: B, budget: usize) -> Self {
        Self {
            inner,
            budget,
            cached: RwLock::default(),
        }
    }

    fn lookup(&self, cksum: &str) -> Option<Bytes> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .blobs
            .get(cksum)
            .cloned()
    }

    fn remember(&self, cksum: &str, bytes: &Bytes) {
        if bytes.len() > MAX_CACHED_BLOB || bytes.len() > self.budget {
            return;
        }
        let mut c = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        if c.blobs.contains_key(cksum) {
            return;
        }
        while c.bytes + bytes.len() > self.budget {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.blobs.remove(&old) {
                c.bytes -= b.len();
            }
        }
        c.bytes += bytes.len();
        c.order.push_back(cksum.to_owned());
        c.blobs.insert(cksum.to_owned(), bytes.clone());
    }
}

#[async_trait]
impl<B: BlobStore> BlobStore for HotBlobs<B> {
    async fn put(&self, cksum: &str, bytes: Bytes) -> StoreResult<()> {
        self.inner.put(cksum, bytes).await
    }

    async fn get(&self, cksum: &str) -> StoreResult<Option<Bytes>> {
        if let Some(hit) = self.lookup(cksum) {
            return Ok(Some(hit));
        }
        let bytes = self.inner.get(cksum).await?;
        if let Some(bytes) = &bytes {
            self.remember(cksum, bytes);
        }
        Ok(bytes)
    }

    async fn sweep(&self, keep: &HashSet<String>, cutoff: SystemTime) -> StoreResult<usize> {
        let removed = self.inner.sweep(keep, cutoff).await?;
        if removed > 0 {
            // Forget what the sweep may have deleted, so a copy in memory
            // never outlives the file.
            let mut c = self.cached.write().unwrap_or_else(PoisonError::into_inner);
            c.order.retain(|k| keep.contains(k));
            let Cached { blobs, bytes, .. } = &mut *c;
            blobs.retain(|k, b| {
                let kept = keep.contains(k);
                if !kept {
                    *bytes -= b.len();
                }
                kept
            });
        }
        Ok(removed)
    }

    async fn fetch(&self, cksum: &str) -> StoreResult<Option<Blob>> {
        if let Some(hit) = self.lookup(cksum) {
            return Ok(Some(Blob::Bytes(hit)));
        }
        match self.inner.fetch(cksum).await? {
            Some(Blob::Bytes(bytes)) => {
                self.remember(cksum, &bytes);
                Ok(Some(Blob::Bytes(bytes)))
            }
            // A small file from the bucket is read whole once and then
            // served from memory; a large one streams through, so the
            // node never holds it.
            Some(Blob::Stream { body, len })
                if len.is_some_and(|l| l as usize <= MAX_CACHED_BLOB) =>
            {
                use futures_util::TryStreamExt;
                let chunks: Vec<Bytes> = body.try_collect().await.map_err(StoreError::backend)?;
                let bytes = Bytes::from(chunks.concat());
                self.remember(cksum, &bytes);
                Ok(Some(Blob::Bytes(bytes)))
            }
            // A redirect is cheaper than any copy.
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsBlobStore;

    #[tokio::test]
    async fn keeps_blobs_within_budget_and_serves_them_after_the_disk_loses_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hot = HotBlobs::new(FsBlobStore::open(dir.path()).expect("open"), 10);
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        hot.put(&a, Bytes::from_static(b"123456"))
            .await
            .expect("put");
        hot.put(&b, Bytes::from_static(b"abcdef"))
            .await
            .expect("put");
        assert_eq!(
            hot.get(&a).await.expect("get").as_deref(),
            Some(&b"123456"[..])
        );
        std::fs::remove_dir_all(dir.path().join("aa")).expect("remove");
        // Still in memory although gone from disk.
        assert_eq!(
            hot.get(&a).await.expect("get").as_deref(),
            Some(&b"123456"[..])
        );
        // Reading `b` evicts `a` (6 + 6 > 10).
        assert!(hot.get(&b).await.expect("get").is_some());
        assert!(hot.get(&a).await.expect("get").is_none());
    }
}
