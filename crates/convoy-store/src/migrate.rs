//! `cargo convoy migrate`: copies an embedded registry (a `--data`
//! directory) into PostgreSQL and blob storage.
//!
//! - Every blob's sha256 is checked against its index line before anything
//!   of its crate is written; a mismatch or a missing blob stops the
//!   migration with the crate and version named.
//! - Idempotent and resumable: each crate is copied blobs first, then its
//!   rows in one transaction whose inserts skip what is already there, so a
//!   second run (after a crash, or to catch up with a server that kept
//!   running) copies only what is missing and never counts a download
//!   twice. A version already present with another checksum is an error,
//!   never overwritten.
//! - What is copied: users, tokens (their hashes; the secrets never existed
//!   on disk), crates, owners, published versions with yanked state and
//!   download counts, and committed releases. Open stages are not: finish
//!   or abort them first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::backend::DATABASE_FILE;
use crate::fs::FsBlobStore;
use crate::postgres::PgStore;
use crate::{BlobStore, StoreError};

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The source has no database.
    #[error("`{0}` is not a Convoy data directory (no {DATABASE_FILE})")]
    NoDatabase(PathBuf),
    /// The source database could not be read.
    #[error("failed to read the embedded database")]
    Read(#[source] rusqlite::Error),
    /// A blob is missing from the source.
    #[error(
        "the `.crate` of `{name}@{version}` (sha256 {cksum}) is missing from the data directory"
    )]
    MissingBlob {
        /// Crate.
        name: String,
        /// Version.
        version: String,
        /// Expected checksum.
        cksum: String,
    },
    /// A blob does not match its index line.
    #[error(
        "the `.crate` of `{name}@{version}` has sha256 {actual}, but its index line says {expected}"
    )]
    ChecksumMismatch {
        /// Crate.
        name: String,
        /// Version.
        version: String,
        /// From the index line.
        expected: String,
        /// Of the bytes.
        actual: String,
    },
    /// The target already holds the version with other bytes.
    #[error("the target already has `{name}@{version}` with sha256 {existing}, not {expected}")]
    Conflict {
        /// Crate.
        name: String,
        /// Version.
        version: String,
        /// In the target.
        existing: String,
        /// In the source.
        expected: String,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateReport {
    /// Crates seen.
    pub crates: usize,
    /// Versions copied by this run.
    pub versions_copied: usize,
    /// Versions the target already had.
    pub versions_present: usize,
    /// Blobs checked and written (writes of present blobs are no-ops).
    pub blobs: usize,
    /// Tokens copied by this run.
    pub tokens_copied: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: i64,
    pub login: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub id: String,
    pub user_id: i64,
    pub name: String,
    pub hash: Vec<u8>,
    pub scopes: String,
    pub crates: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub id: String,
    pub user_id: i64,
    pub scopes: String,
    pub crates: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub committed_at: Option<i64>,
    pub committed_by: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub num: String,
    pub num_key: String,
    pub cksum: String,
    pub yanked: bool,
    pub line: String,
    pub published_by: i64,
    pub created_at: i64,
    pub downloads: i64,
    pub stage_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Crate {
    pub name: String,
    pub canonical: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub owners: Vec<i64>,
    pub versions: Vec<Version>,
}

/// Everything copied, read from the source in one read transaction.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub users: Vec<User>,
    pub tokens: Vec<Token>,
    pub stages: Vec<Stage>,
    pub crates: Vec<Crate>,
}

fn read_snapshot(path: &Path) -> Result<Snapshot, rusqlite::Error> {
    let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.transaction()?;
    let users = tx
        .prepare("SELECT id, login, created_at FROM users ORDER BY id")?
        .query_map([], |r| {
            Ok(User {
                id: r.get(0)?,
                login: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let tokens = tx
        .prepare(
            "SELECT id, user_id, name, hash, scopes, crates, expires_at, created_at FROM tokens
             WHERE stage_id IS NULL ORDER BY created_at, id",
        )?
        .query_map([], |r| {
            Ok(Token {
                id: r.get(0)?,
                user_id: r.get(1)?,
                name: r.get(2)?,
                hash: r.get(3)?,
                scopes: r.get(4)?,
                crates: r.get(5)?,
                expires_at: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let stages = tx
        .prepare(
            "SELECT id, user_id, scopes, crates, created_at, expires_at, committed_at, committed_by
             FROM stages WHERE state = 'committed' ORDER BY created_at, id",
        )?
        .query_map([], |r| {
            Ok(Stage {
                id: r.get(0)?,
                user_id: r.get(1)?,
                scopes: r.get(2)?,
                crates: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                committed_at: r.get(6)?,
                committed_by: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut crates: Vec<(i64, Crate)> = tx
        .prepare("SELECT id, name, canonical, description, created_at FROM crates ORDER BY id")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                Crate {
                    name: r.get(1)?,
                    canonical: r.get(2)?,
                    description: r.get(3)?,
                    created_at: r.get(4)?,
                    owners: Vec::new(),
                    versions: Vec::new(),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let index: HashMap<i64, usize> = crates
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let owners: Vec<(i64, i64)> = tx
        .prepare("SELECT crate_id, user_id FROM owners ORDER BY crate_id, user_id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (crate_id, user) in owners {
        if let Some(&i) = index.get(&crate_id) {
            crates[i].1.owners.push(user);
        }
    }
    let versions: Vec<(i64, Version)> = tx
        .prepare(
            "SELECT crate_id, num, num_key, cksum, yanked, line, published_by, created_at,
                    downloads, stage_id
             FROM versions WHERE state = 'published' ORDER BY id",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                Version {
                    num: r.get(1)?,
                    num_key: r.get(2)?,
                    cksum: r.get(3)?,
                    yanked: r.get(4)?,
                    line: r.get(5)?,
                    published_by: r.get(6)?,
                    created_at: r.get(7)?,
                    downloads: r.get(8)?,
                    stage_id: r.get(9)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (crate_id, version) in versions {
        if let Some(&i) = index.get(&crate_id) {
            crates[i].1.versions.push(version);
        }
    }
    let crates = crates
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| !c.versions.is_empty())
        .collect();
    Ok(Snapshot {
        users,
        tokens,
        stages,
        crates,
    })
}

/// Copies the registry in `from` into `target` and `blobs`; `progress` gets
/// one line per crate.
pub async fn from_data(
    from: &Path,
    target: &PgStore,
    blobs: &dyn BlobStore,
    mut progress: impl FnMut(&str),
) -> Result<MigrateReport, MigrateError> {
    let db = from.join(DATABASE_FILE);
    if !db.exists() {
        return Err(MigrateError::NoDatabase(from.to_path_buf()));
    }
    let snap = tokio::task::spawn_blocking(move || read_snapshot(&db))
        .await
        .map_err(StoreError::backend)?
        .map_err(MigrateError::Read)?;
    let source = FsBlobStore::open(from.join("crates"))?;
    let mut report = MigrateReport::default();
    let users = target.import_users(&snap.users).await?;
    report.tokens_copied = target.import_tokens(&snap.tokens, &users).await?;
    target.import_stages(&snap.stages, &users).await?;
    for krate in &snap.crates {
        for v in &krate.versions {
            let Some(bytes) = source.get(&v.cksum).await? else {
                return Err(MigrateError::MissingBlob {
                    name: krate.name.clone(),
                    version: v.num.clone(),
                    cksum: v.cksum.clone(),
                });
            };
            let line: convoy_protocol::index::IndexPackage =
                serde_json::from_str(&v.line).map_err(StoreError::backend)?;
            let actual = hex::encode(Sha256::digest(&bytes));
            if actual != line.cksum || actual != v.cksum {
                return Err(MigrateError::ChecksumMismatch {
                    name: krate.name.clone(),
                    version: v.num.clone(),
                    expected: line.cksum,
                    actual,
                });
            }
            blobs.put(&v.cksum, bytes).await?;
            report.blobs += 1;
        }
        let (copied, present) = target.import_crate(krate, &users).await?;
        report.crates += 1;
        report.versions_copied += copied;
        report.versions_present += present;
        progress(&format!(
            "{} ({copied} versions copied, {present} already there)",
            krate.name
        ));
    }
    Ok(report)
}
