//! Choosing the backends from settings: the one place that knows every
//! [`Store`] and [`BlobStore`], so the server, the token commands, the
//! migration and the tests never name a concrete backend.
//!
//! - `--data DIR` (the default): SQLite in `DIR/convoy.sqlite` and blobs in
//!   `DIR/crates`, for one server per directory.
//! - `--database postgres://…` with `--storage s3://BUCKET[/PREFIX]` or
//!   `--storage file:///DIR`: any number of stateless nodes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{DEFAULT_CACHE_BYTES, HotBlobs};
use crate::fs::FsBlobStore;
use crate::object::{DownloadMode, ObjectBlobStore};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{BlobStore, Store, StoreError};

/// Where the metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite plus files in a data directory.
    Data(PathBuf),
    /// PostgreSQL, with blobs elsewhere.
    Postgres {
        /// `postgres://USER[:PASS]@HOST:PORT/DB`.
        url: String,
        /// Where the blobs are.
        storage: Storage,
    },
}

/// Where the blobs live, for a database backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A local (or shared network) directory.
    Dir(PathBuf),
    /// An S3 bucket, with an optional key prefix.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, without slashes at either end.
        prefix: String,
    },
}

/// Why the backends could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The database URL is not `postgres://…`.
    #[error("unsupported database URL `{0}`, expected `postgres://USER[:PASS]@HOST:PORT/DB`")]
    DatabaseUrl(String),
    /// The storage URL is not `s3://…` or `file:///…`.
    #[error("unsupported storage URL `{0}`, expected `s3://BUCKET[/PREFIX]` or `file:///DIR`")]
    StorageUrl(String),
    /// A database without storage.
    #[error("`--database` needs `--storage` (or CONVOY_STORAGE_URL) too")]
    MissingStorage,
    /// Storage without a database.
    #[error("`--storage` needs `--database` (or CONVOY_DATABASE_URL) too")]
    MissingDatabase,
    /// Another server owns the data directory.
    #[error("another `cargo convoy serve` is using data directory `{0}`")]
    Locked(PathBuf),
    /// The data directory could not be prepared.
    #[error("failed to prepare data directory `{path}`")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed to open.
    #[error("failed to open the {what}")]
    Open {
        /// Which backend.
        what: &'static str,
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl Backend {
    /// The backend from the command line: `database`/`storage` URLs (from
    /// flags or `CONVOY_DATABASE_URL`/`CONVOY_STORAGE_URL`) when given,
    /// else the data directory.
    pub fn from_urls(
        data: &Path,
        database: Option<&str>,
        storage: Option<&str>,
    ) -> Result<Self, BackendError> {
        match (database, storage) {
            (None, None) => Ok(Self::Data(data.to_path_buf())),
            (Some(_), None) => Err(BackendError::MissingStorage),
            (None, Some(_)) => Err(BackendError::MissingDatabase),
            (Some(db), Some(storage)) => {
                if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
                    return Err(BackendError::DatabaseUrl(redact(db)));
                }
                Ok(Self::Postgres {
                    url: db.to_owned(),
                    storage: Storage::parse(storage)?,
                })
            }
        }
    }
}

/// A database URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl Storage {
    /// `s3://BUCKET[/PREFIX]` or `file:///DIR`.
    pub fn parse(url: &str) -> Result<Self, BackendError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackendError::StorageUrl(url.to_owned()));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(path) = url.strip_prefix("file://")
            && path.starts_with('/')
        {
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        Err(BackendError::StorageUrl(url.to_owned()))
    }
}

/// Settings beyond the backend choice.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How S3 downloads are answered.
    pub download_mode: DownloadMode,
    /// Memory for hot blobs; 0 turns the cache off.
    pub cache_bytes: usize,
    /// Fault injection for crash tests (see `SqliteStore::with_commit_delay`).
    pub commit_delay: Duration,
    /// Whether this process serves (and so must own a data directory
    /// alone); token commands and migrations share it with a server.
    pub exclusive: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            download_mode: DownloadMode::Stream,
            cache_bytes: DEFAULT_CACHE_BYTES,
            commit_delay: Duration::ZERO,
            exclusive: false,
        }
    }
}

/// Both stores, ready to hand to the server.
pub struct Backends {
    /// Metadata.
    pub store: Arc<dyn Store>,
    /// `.crate` files.
    pub blobs: Arc<dyn BlobStore>,
}

/// Opens the stores `backend` names. Needs a Tokio runtime.
pub async fn open(backend: &Backend, options: &OpenOptions) -> Result<Backends, BackendError> {
    let (store, blobs): (Arc<dyn Store>, Arc<dyn BlobStore>) = match backend {
        Backend::Data(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| BackendError::Dir {
                path: dir.clone(),
                source,
            })?;
            let store = if options.exclusive {
                SqliteStore::open_exclusive(dir)
            } else {
                SqliteStore::open(dir.join(DATABASE_FILE))
            };
            let store = store.map_err(|source| match source {
                StoreError::Locked { dir } => BackendError::Locked(dir),
                source => BackendError::Open {
                    what: "database",
                    source,
                },
            })?;
            let blobs =
                FsBlobStore::open(dir.join("crates")).map_err(|source| BackendError::Open {
                    what: "blob directory",
                    source,
                })?;
            (
                Arc::new(store.with_commit_delay(options.commit_delay)),
                hot(blobs, options),
            )
        }
        Backend::Postgres { url, storage } => {
            let store = PgStore::connect_with(url, options.commit_delay)
                .await
                .map_err(|source| BackendError::Open {
                    what: "PostgreSQL database",
                    source,
                })?;
            (Arc::new(store), open_storage(storage, options)?)
        }
    };
    Ok(Backends { store, blobs })
}

/// The metadata store alone, for administrative commands (tokens) that
/// need no blob storage: PostgreSQL when `database` is given, else the
/// SQLite database in `data`. Shares the database with running servers.
pub async fn open_metadata(
    data: &Path,
    database: Option<&str>,
) -> Result<Arc<dyn Store>, BackendError> {
    match database {
        Some(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(BackendError::DatabaseUrl(redact(url)));
            }
            let store = PgStore::connect(url)
                .await
                .map_err(|source| BackendError::Open {
                    what: "PostgreSQL database",
                    source,
                })?;
            Ok(Arc::new(store))
        }
        None => {
            std::fs::create_dir_all(data).map_err(|source| BackendError::Dir {
                path: data.to_path_buf(),
                source,
            })?;
            let store = SqliteStore::open(data.join(DATABASE_FILE)).map_err(|source| {
                BackendError::Open {
                    what: "database",
                    source,
                }
            })?;
            Ok(Arc::new(store))
        }
    }
}

pub use crate::sqlite::DATABASE_FILE;

/// The blob store `storage` names, behind the hot-blob cache.
pub fn open_storage(
    storage: &Storage,
    options: &OpenOptions,
) -> Result<Arc<dyn BlobStore>, BackendError> {
    Ok(match storage {
        Storage::Dir(dir) => {
            let fs = FsBlobStore::open(dir).map_err(|source| BackendError::Open {
                what: "blob directory",
                source,
            })?;
            hot(fs, options)
        }
        Storage::S3 { bucket, prefix } => {
            let s3 =
                ObjectBlobStore::s3(bucket, prefix, options.download_mode).map_err(|source| {
                    BackendError::Open {
                        what: "S3 bucket",
                        source,
                    }
                })?;
            hot(s3, options)
        }
    })
}

fn hot(blobs: impl BlobStore, options: &OpenOptions) -> Arc<dyn BlobStore> {
    if options.cache_bytes == 0 {
        Arc::new(blobs)
    } else {
        Arc::new(HotBlobs::new(blobs, options.cache_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        let data = Path::new("/d");
        assert_eq!(
            Backend::from_urls(data, None, None).expect("default"),
            Backend::Data(PathBuf::from("/d"))
        );
        assert_eq!(
            Backend::from_urls(data, Some("postgres://u@h:1/db"), Some("s3://b/p/q/")).expect("pg"),
            Backend::Postgres {
                url: "postgres://u@h:1/db".into(),
                storage: Storage::S3 {
                    bucket: "b".into(),
                    prefix: "p/q".into()
                }
            }
        );
        assert!(matches!(
            Backend::from_urls(data, Some("postgres://u@h/db"), Some("file:///srv/blobs")),
            Ok(Backend::Postgres {
                storage: Storage::Dir(_),
                ..
            })
        ));
        assert!(matches!(
            Backend::from_urls(data, Some("mysql://x"), Some("s3://b")),
            Err(BackendError::DatabaseUrl(_))
        ));
        assert!(matches!(
            Backend::from_urls(data, Some("postgres://x"), Some("file://rel")),
            Err(BackendError::StorageUrl(_))
        ));
        assert!(matches!(
            Backend::from_urls(data, Some("postgres://x"), None),
            Err(BackendError::MissingStorage)
        ));
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
    }
}
