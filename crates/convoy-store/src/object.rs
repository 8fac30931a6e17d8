//! `.crate` files in an object store (S3 or anything that speaks its
//! protocol), through the `object_store` crate.
//!
//! Blobs are written once with `PutMode::Create` and never overwritten, so
//! nothing here needs compare-and-swap: whether a blob is part of a
//! published version is decided by the metadata store, after the blob is
//! durably stored. A blob whose version never committed is garbage, never
//! wrong.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{Blob, BlobStore, StoreError, StoreResult, blob_key};

/// How downloads of blobs are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadMode {
    /// Through the server, streamed as the object store sends it.
    Stream,
    /// With a 302 to a presigned URL valid this long; the bucket must then
    /// be reachable by clients.
    Redirect(Duration),
}

/// Blobs in a bucket, under an optional prefix, keyed as [`blob_key`] says.
#[derive(Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<AmazonS3>>,
    prefix: String,
    mode: DownloadMode,
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .finish()
    }
}

impl ObjectBlobStore {
    /// An S3 bucket configured from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`).
    pub fn s3(bucket: &str, prefix: &str, mode: DownloadMode) -> StoreResult<Self> {
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(StoreError::backend)?;
        Ok(Self::with_s3(s3, prefix, mode))
    }

    /// An S3 client built elsewhere.
    pub fn with_s3(s3: AmazonS3, prefix: &str, mode: DownloadMode) -> Self {
        let s3 = Arc::new(s3);
        Self {
            store: s3.clone(),
            signer: Some(s3),
            prefix: prefix.trim_matches('/').to_owned(),
            mode,
        }
    }

    /// Any object store, always streamed (tests, other clouds).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            signer: None,
            prefix: prefix.trim_matches('/').to_owned(),
            mode: DownloadMode::Stream,
        }
    }

    fn path(&self, cksum: &str) -> StoreResult<Path> {
        let key = blob_key(cksum)?;
        let full = if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(full).map_err(StoreError::backend)
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, cksum: &str, bytes: Bytes) -> StoreResult<()> {
        let path = self.path(cksum)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from_bytes(bytes.clone()), options)
            .await
        {
            Ok(_) => Ok(()),
            // Same key, same bytes. Written again all the same, so that its
            // age restarts: an orphan sweep must not take a blob that a new
            // upload is about to commit.
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => self
                .store
                .put(&path, PutPayload::from_bytes(bytes))
                .await
                .map(drop)
                .map_err(StoreError::backend),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn get(&self, cksum: &str) -> StoreResult<Option<Bytes>> {
        let path = self.path(cksum)?;
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(StoreError::backend)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    /// Never deletes: several nodes write to one bucket, and S3 offers no
    /// conditional delete that could close the window between a sweep's
    /// age check and its delete while another node rewrites the blob for a
    /// publish. Orphans (losers of racing publishes, discarded stages) are
    /// rare and small; a bucket lifecycle rule cannot tell them apart, so
    /// they stay (docs/DEPLOY.md).
    async fn sweep(&self, keep: &HashSet<String>, cutoff: SystemTime) -> StoreResult<usize> {
        let _ = (keep, cutoff);
        Ok(0)
    }

    async fn fetch(&self, cksum: &str) -> StoreResult<Option<Blob>> {
        let path = self.path(cksum)?;
        if let (DownloadMode::Redirect(ttl), Some(signer)) = (self.mode, &self.signer) {
            let url = signer
                .signed_url(object_store::signer::Method::GET, &path, ttl)
                .await
                .map_err(StoreError::backend)?;
            return Ok(Some(Blob::Redirect(url.to_string())));
        }
        match self.store.get(&path).await {
            Ok(result) => {
                let len = Some(result.meta.size);
                let body = result.into_stream().map_err(std::io::Error::other);
                Ok(Some(Blob::Stream {
                    body: Box::pin(body),
                    len,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}
