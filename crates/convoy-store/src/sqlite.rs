//! The embedded backend: one SQLite database (bundled, nothing to install),
//! owned by one server process at a time ([`SqliteStore::open_exclusive`]).
//! The publish rules and index rendering are the backend-neutral ones of
//! `crate::rules`; this module only gathers their facts in SQL.
//!
//! Writes go through a single connection, so they are serialized and a
//! concurrent publish can never lose or duplicate an index line. Reads use a
//! small pool. Rendered index files are also held in memory: this store is
//! the only writer of its database while a server runs, so the cache is
//! updated right after each commit, under the writer lock, and a reader never
//! waits on SQLite for the hottest request of all.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use convoy_protocol::api::{Owner, SearchHit};
use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use convoy_protocol::scope::CrateGlob;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::rules::{self, ExistingCrate, PublishFacts, Slot, split_list};
use crate::token::{hashes_match, token_id};
use crate::{
    AuthenticatedToken, CrateDetails, CrateSummary, Dependent, IndexFile, NewToken, NewVersion,
    PublishOutcome, Release, StageRecord, Store, StoreError, StoreResult, TokenInfo, TokenSecret,
    Totals, UserId, VersionMeta, hash_token,
};

const SCHEMA_VERSION: i64 = 3;

/// The database inside a data directory.
pub const DATABASE_FILE: &str = "convoy.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    crates TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crates (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    canonical TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    crate_id INTEGER NOT NULL REFERENCES crates(id),
    num TEXT NOT NULL,
    num_key TEXT NOT NULL,
    cksum TEXT NOT NULL,
    yanked INTEGER NOT NULL DEFAULT 0,
    line TEXT NOT NULL,
    published_by INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0,
    UNIQUE (crate_id, num_key)
);
CREATE TABLE IF NOT EXISTS owners (
    crate_id INTEGER NOT NULL REFERENCES crates(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (crate_id, user_id)
);
CREATE TABLE IF NOT EXISTS index_files (
    crate_id INTEGER PRIMARY KEY REFERENCES crates(id),
    canonical TEXT NOT NULL UNIQUE,
    content BLOB NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL
);
";

/// Version 2: staged releases. A version row is `published`, `staged` (in
/// an open stage, invisible) or `aborted` (its stage was discarded; the slot
/// may be reused only with the same bytes). Stage tokens are ordinary token
/// rows bound to a stage.
const SCHEMA_V2: &str = "
ALTER TABLE versions ADD COLUMN state TEXT NOT NULL DEFAULT 'published';
ALTER TABLE versions ADD COLUMN stage_id TEXT;
ALTER TABLE tokens ADD COLUMN stage_id TEXT;
CREATE TABLE IF NOT EXISTS stages (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    crates TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    committed_at INTEGER,
    committed_by INTEGER REFERENCES users(id)
);
CREATE INDEX IF NOT EXISTS versions_stage ON versions(stage_id);
";

/// Version 3: hardening. Stage tokens name the token that opened their
/// stage (`parent_id`) and die with it; tokens record when they were last
/// used; a staged version keeps its own description, so search shows it
/// only once the stage commits.
const SCHEMA_V3: &str = "
ALTER TABLE tokens ADD COLUMN parent_id TEXT;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE versions ADD COLUMN description TEXT;
ALTER TABLE stages ADD COLUMN creator_token TEXT;
CREATE INDEX IF NOT EXISTS tokens_parent ON tokens(parent_id);
";

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    index_cache: RwLock<HashMap<String, IndexFile>>,
    downloads: Mutex<rules::PendingDownloads>,
    /// Published versions' `(canonical, num)` → `(row id, cksum)`, so that a
    /// download touches no SQLite at all: a published version's checksum
    /// never changes and a published version is never removed.
    published: RwLock<HashMap<(String, String), (i64, String)>>,
    /// Publish rate buckets per user. In memory is right here: this
    /// backend has one process.
    buckets: Mutex<HashMap<UserId, rules::Bucket>>,
    /// Fault injection for crash tests: how long a commit holds its
    /// transaction open before committing.
    commit_delay: Duration,
    /// The data directory's `serve.lock`, held while a server owns it.
    _lock: Option<std::fs::File>,
}

use rules::{from_secs, now_secs};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock leaves SQLite state consistent (the
    // transaction rolls back on drop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    // WAL lets readers run beside the writer; FULL makes each commit durable
    // before publish answers 200.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        }
        let writer = open_connection(&path)?;
        let version: i64 = writer
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "database schema version {version} is newer than this Convoy understands ({SCHEMA_VERSION})"
            ))));
        }
        writer.execute_batch(SCHEMA).map_err(db)?;
        writer.execute_batch(companions::SCHEMA).map_err(db)?;
        if version < 2 {
            writer.execute_batch(SCHEMA_V2).map_err(db)?;
        }
        if version < 3 {
            writer.execute_batch(SCHEMA_V3).map_err(db)?;
        }
        browse::migrate(&writer)?;
        writer
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db)?;
        let cache = load_index_files(&writer)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                index_cache: RwLock::new(cache),
                downloads: Mutex::default(),
                published: RwLock::default(),
                buckets: Mutex::default(),
                commit_delay: Duration::ZERO,
                _lock: None,
            }),
        })
    }

    /// Opens the database of data directory `dir` for a server, which must
    /// be its only one: the in-memory index cache is exact only while this
    /// process is the only writer, so a second server on the same
    /// directory gets [`StoreError::Locked`]. Token commands use
    /// [`SqliteStore::open`] and share the database through SQLite's own
    /// locking.
    pub fn open_exclusive(dir: impl AsRef<Path>) -> StoreResult<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        let lock = std::fs::File::create(dir.join("serve.lock")).map_err(StoreError::backend)?;
        lock.try_lock().map_err(|_| StoreError::Locked {
            dir: dir.to_path_buf(),
        })?;
        let mut store = Self::open(dir.join(DATABASE_FILE))?;
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner._lock = Some(lock);
        }
        Ok(store)
    }

    /// Makes every stage commit hold its transaction open for `delay`
    /// before committing. Only for crash tests, which need a kill to land
    /// inside a commit; must be called before the store is shared.
    pub fn with_commit_delay(mut self, delay: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.commit_delay = delay;
        }
        self
    }

    /// Writes buffered download counts. Call before shutting down.
    pub fn flush(&self) -> StoreResult<()> {
        self.inner.flush_downloads()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(StoreError::backend)?
    }
}

fn load_index_files(conn: &Connection) -> StoreResult<HashMap<String, IndexFile>> {
    let mut stmt = conn
        .prepare("SELECT canonical, content, etag, modified_ms FROM index_files")
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db)?;
    let mut map = HashMap::new();
    for row in rows {
        let (canonical, content, etag, ms) = row.map_err(db)?;
        map.insert(
            canonical,
            IndexFile {
                content: Bytes::from(content),
                etag,
                last_modified: UNIX_EPOCH + Duration::from_millis(ms as u64),
            },
        );
    }
    Ok(map)
}

/// Rewrites a crate's index file from its version rows, inside `tx`, and
/// returns it for the cache.
fn render_index_file(
    tx: &Transaction<'_>,
    crate_id: i64,
    canonical: &str,
) -> StoreResult<Option<IndexFile>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT line FROM versions WHERE crate_id = ?1 AND state = 'published' ORDER BY id",
        )
        .map_err(db)?;
    let lines = stmt
        .query_map([crate_id], |r| r.get::<_, String>(0))
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    let Some(file) = rules::render_index(lines.iter().map(String::as_str), SystemTime::now())
    else {
        // Only staged or aborted versions: to readers the crate does not
        // exist.
        tx.execute("DELETE FROM index_files WHERE crate_id = ?1", [crate_id])
            .map_err(db)?;
        return Ok(None);
    };
    tx.execute(
        "INSERT INTO index_files (crate_id, canonical, content, etag, modified_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (crate_id) DO UPDATE SET content = ?3, etag = ?4, modified_ms = ?5",
        params![
            crate_id,
            canonical,
            &file.content[..],
            file.etag,
            rules::to_millis(file.last_modified)
        ],
    )
    .map_err(db)?;
    Ok(Some(file))
}

struct CrateRow {
    id: i64,
    name: String,
}

fn find_crate(conn: &Connection, name: &str) -> StoreResult<Option<CrateRow>> {
    conn.prepare_cached("SELECT id, name FROM crates WHERE canonical = ?1")
        .map_err(db)?
        .query_row([canonical_name(name)], |r| {
            Ok(CrateRow {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .optional()
        .map_err(db)
}

/// A crate that readers can see: one with a published version. A crate row
/// that only staged or discarded versions created does not exist to anyone
/// outside its stage.
fn find_visible_crate(conn: &Connection, name: &str) -> StoreResult<Option<CrateRow>> {
    let Some(krate) = find_crate(conn, name)? else {
        return Ok(None);
    };
    let published = conn
        .prepare_cached("SELECT 1 FROM versions WHERE crate_id = ?1 AND state = 'published'")
        .map_err(db)?
        .exists([krate.id])
        .map_err(db)?;
    Ok(published.then_some(krate))
}

fn require_crate(conn: &Connection, name: &str) -> StoreResult<CrateRow> {
    find_visible_crate(conn, name)?.ok_or_else(|| StoreError::CrateNotFound {
        name: name.to_owned(),
    })
}

fn is_owner(conn: &Connection, crate_id: i64, user: UserId) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM owners WHERE crate_id = ?1 AND user_id = ?2")
        .map_err(db)?
        .exists(params![crate_id, user])
        .map_err(db)
}

fn require_owner(conn: &Connection, krate: &CrateRow, user: UserId) -> StoreResult<()> {
    if is_owner(conn, krate.id, user)? {
        Ok(())
    } else {
        Err(StoreError::NotOwner {
            name: krate.name.clone(),
        })
    }
}

fn user_id(conn: &Connection, login: &str) -> StoreResult<Option<UserId>> {
    conn.prepare_cached("SELECT id FROM users WHERE login = ?1")
        .map_err(db)?
        .query_row([login], |r| r.get(0))
        .optional()
        .map_err(db)
}

impl Inner {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = match lock(&self.readers).pop() {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        lock(&self.readers).push(conn);
        result
    }

    /// Runs `f` in an immediate transaction on the writer connection and
    /// commits. `after_commit` runs while the writer lock is still held, so
    /// cache updates happen in commit order.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
        after_commit: impl FnOnce(&T),
    ) -> StoreResult<T> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let value = f(&tx)?;
        tx.commit().map_err(db)?;
        after_commit(&value);
        Ok(value)
    }

    fn cache_index(&self, canonical: &str, file: &Option<IndexFile>) {
        self.swap_index_files(std::iter::once((canonical.to_owned(), file.clone())));
    }

    /// Replaces several index files under one lock acquisition, so a reader
    /// sees all of them change or none: what makes a release commit atomic
    /// for readers.
    pub(super) fn swap_index_files(
        &self,
        files: impl IntoIterator<Item = (String, Option<IndexFile>)>,
    ) {
        let mut cache = self
            .index_cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (canonical, file) in files {
            match file {
                Some(file) => cache.insert(canonical, file),
                None => cache.remove(&canonical),
            };
        }
    }

    fn check_publish(&self, new: &NewVersion, stage: Option<&str>) -> StoreResult<PublishOutcome> {
        self.read(|conn| validate_publish(conn, new, stage).map(|v| v.outcome))
    }

    /// Publishes `new`, or stages it into `stage` (invisible until the
    /// stage commits). Both paths run the same checks and the same insert.
    pub(super) fn publish_into(
        &self,
        new: NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome> {
        let line = &new.line;
        let canonical = canonical_name(&line.name);
        let (outcome, _file) = self.write(
            |tx| {
                staging::expire_due(tx)?;
                if let Some(stage) = stage {
                    staging::require_open(tx, stage)?;
                }
                let checked = validate_publish(tx, &new, stage)?;
                // A staged description stays on its version row until the
                // stage commits: search must not show it before.
                let shown = if stage.is_some() { None } else { new.description.as_deref() };
                let crate_id = match checked.crate_id {
                    Some(id) => {
                        if stage.is_none() {
                            tx.execute(
                                "UPDATE crates SET description = ?2 WHERE id = ?1",
                                params![id, shown],
                            )
                            .map_err(db)?;
                        }
                        id
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO crates (name, canonical, description, created_at) VALUES (?1, ?2, ?3, ?4)",
                            params![line.name, canonical, shown, now_secs()],
                        )
                        .map_err(db)?;
                        let id = tx.last_insert_rowid();
                        tx.execute(
                            "INSERT INTO owners (crate_id, user_id) VALUES (?1, ?2)",
                            params![id, new.publisher],
                        )
                        .map_err(db)?;
                        id
                    }
                };
                companions::record(tx, crate_id, &new)?;
                let json = serde_json::to_string(line).map_err(StoreError::backend)?;
                let state = if stage.is_some() { "staged" } else { "published" };
                if let Some(row) = checked.reuse_row {
                    // The slot of an aborted stage, reused with the same bytes.
                    tx.execute(
                        "UPDATE versions SET num = ?2, line = ?3, yanked = 0, state = ?4, stage_id = ?5,
                         published_by = ?6, created_at = ?7, description = ?8 WHERE id = ?1",
                        params![row, line.vers, json, state, stage, new.publisher, now_secs(), new.description],
                    )
                    .map_err(db)?;
                } else {
                    tx.execute(
                        "INSERT INTO versions (crate_id, num, num_key, cksum, yanked, line, published_by, created_at, state, stage_id, description)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        params![crate_id, line.vers, rules::version_key(&line.vers), line.cksum, line.yanked, json, new.publisher, now_secs(), state, stage, new.description],
                    )
                    .map_err(db)?;
                }
                let version_id = checked.reuse_row.unwrap_or_else(|| tx.last_insert_rowid());
                browse::record_version(tx, version_id, &new)?;
                let file = match stage {
                    // Staging changes nothing a reader can see.
                    Some(_) => return Ok((checked.outcome, None)),
                    None => render_index_file(tx, crate_id, &canonical)?,
                };
                Ok((checked.outcome, Some(file)))
            },
            |(_, file)| {
                if let Some(file) = file {
                    self.cache_index(&canonical, file);
                }
            },
        )?;
        Ok(outcome)
    }

    fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<()> {
        let canonical = canonical_name(name);
        self.write(
            |tx| {
                let krate = require_crate(tx, name)?;
                companions::require_owner(tx, &krate, actor)?;
                // A staged version is not published yet, so there is
                // nothing to yank: a commit would otherwise publish it
                // already yanked.
                let row: Option<(i64, String)> = tx
                    .prepare_cached(
                        "SELECT id, line FROM versions WHERE crate_id = ?1 AND num = ?2
                         AND state = 'published'",
                    )
                    .map_err(db)?
                    .query_row(params![krate.id, version], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(db)?;
                let Some((version_id, line)) = row else {
                    return Err(StoreError::VersionNotFound {
                        name: krate.name,
                        version: version.to_owned(),
                    });
                };
                let mut line: IndexPackage =
                    serde_json::from_str(&line).map_err(StoreError::backend)?;
                line.yanked = yanked;
                let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
                tx.execute(
                    "UPDATE versions SET yanked = ?2, line = ?3 WHERE id = ?1",
                    params![version_id, yanked, json],
                )
                .map_err(db)?;
                let mut files = companions::cascade_yank(tx, &krate.name, version, yanked)?;
                files.push((
                    canonical.clone(),
                    render_index_file(tx, krate.id, &canonical)?,
                ));
                Ok(files)
            },
            |files| self.swap_index_files(files.iter().cloned()),
        )?;
        Ok(())
    }

    /// A download of a version already seen: memory only, no SQLite and no
    /// blocking thread. Says whether a flush of the counts is due.
    fn download_cached(&self, name: &str, version: &str) -> Option<(String, bool)> {
        let key = (canonical_name(name), version.to_owned());
        let (version_id, cksum) = self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()?;
        let due = lock(&self.downloads).add(version_id);
        Some((cksum, due))
    }

    fn download(&self, name: &str, version: &str) -> StoreResult<Option<String>> {
        let key = (canonical_name(name), version.to_owned());
        let found: Option<(i64, String)> = self.read(|conn| {
            conn.prepare_cached(
                "SELECT v.id, v.cksum FROM versions v JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = ?1 AND v.num = ?2 AND v.state = 'published'",
            )
            .map_err(db)?
            .query_row(params![canonical_name(name), version], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db)
        })?;
        let Some((version_id, cksum)) = found else {
            return Ok(None);
        };
        self.published
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (version_id, cksum.clone()));
        if lock(&self.downloads).add(version_id) {
            self.flush_downloads()?;
        }
        Ok(Some(cksum))
    }

    fn flush_downloads(&self) -> StoreResult<()> {
        let (counts, uses) = {
            let mut pending = lock(&self.downloads);
            (pending.take(), std::mem::take(&mut pending.token_uses))
        };
        if counts.is_empty() && uses.is_empty() {
            return Ok(());
        }
        self.write(
            |tx| {
                let mut stmt = tx
                    .prepare_cached("UPDATE versions SET downloads = downloads + ?2 WHERE id = ?1")
                    .map_err(db)?;
                for (id, n) in &counts {
                    stmt.execute(params![id, *n as i64]).map_err(db)?;
                }
                let mut stmt = tx
                    .prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE id = ?1")
                    .map_err(db)?;
                for (id, at) in &uses {
                    stmt.execute(params![id, at]).map_err(db)?;
                }
                browse::record_daily(tx, &counts)
            },
            |_| {},
        )
    }

    fn download_count(&self, name: &str, version: &str) -> StoreResult<Option<u64>> {
        let row: Option<(i64, i64)> = self.read(|conn| {
            conn.prepare_cached(
                "SELECT v.id, v.downloads FROM versions v JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = ?1 AND v.num = ?2",
            )
            .map_err(db)?
            .query_row(params![canonical_name(name), version], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db)
        })?;
        Ok(row.map(|(id, stored)| {
            let pending = lock(&self.downloads).counts.get(&id).copied().unwrap_or(0);
            stored as u64 + pending
        }))
    }

    fn owners(&self, name: &str) -> StoreResult<Vec<Owner>> {
        self.read(|conn| {
            let krate = companions::owner_crate(conn, require_crate(conn, name)?)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT u.id, u.login FROM owners o JOIN users u ON u.id = o.user_id
                     WHERE o.crate_id = ?1 ORDER BY u.login",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([krate.id], |r| {
                    Ok(Owner {
                        id: r.get::<_, i64>(0)? as u32,
                        login: r.get(1)?,
                        name: None,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
    }

    fn change_owners(
        &self,
        name: &str,
        logins: &[String],
        actor: UserId,
        add: bool,
    ) -> StoreResult<()> {
        self.write(
            |tx| {
                let krate = require_crate(tx, name)?;
                companions::refuse_owner_change(tx, &krate)?;
                require_owner(tx, &krate, actor)?;
                for login in logins {
                    let Some(user) = user_id(tx, login)? else {
                        return Err(StoreError::UserNotFound {
                            login: login.clone(),
                        });
                    };
                    let sql = if add {
                        "INSERT OR IGNORE INTO owners (crate_id, user_id) VALUES (?1, ?2)"
                    } else {
                        "DELETE FROM owners WHERE crate_id = ?1 AND user_id = ?2"
                    };
                    tx.execute(sql, params![krate.id, user]).map_err(db)?;
                }
                let left: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM owners WHERE crate_id = ?1",
                        [krate.id],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if left == 0 {
                    return Err(StoreError::LastOwner { name: krate.name });
                }
                Ok(())
            },
            |_| {},
        )
    }

    fn search(&self, query: &str, page: u32, per_page: u32) -> StoreResult<(Vec<SearchHit>, u64)> {
        let (name_pattern, text_pattern, exact) = rules::search_patterns(query);
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        self.read(|conn| {
            let filter = format!("(c.canonical LIKE ?1 ESCAPE '\\' OR c.description LIKE ?2 ESCAPE '\\')
                AND EXISTS (SELECT 1 FROM versions p WHERE p.crate_id = c.id AND p.state = 'published')
                AND {}", companions::NOT_A_COMPANION);
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM crates c WHERE {filter}"),
                    params![name_pattern, text_pattern],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT c.id, c.name, c.description FROM crates c WHERE {filter}
                     ORDER BY c.canonical = ?3 DESC, c.canonical LIMIT ?4 OFFSET ?5"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![name_pattern, text_pattern, exact, per_page, offset],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    },
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            let mut hits = Vec::with_capacity(rows.len());
            for (id, name, description) in rows {
                hits.push(SearchHit {
                    name,
                    max_version: max_version(conn, id)?,
                    description,
                });
            }
            Ok((hits, total as u64))
        })
    }

    fn authenticate(&self, presented: &str) -> StoreResult<Option<AuthenticatedToken>> {
        let Some(id) = token_id(presented) else {
            return Ok(None);
        };
        struct Row {
            user_id: i64,
            login: String,
            hash: Vec<u8>,
            scopes: String,
            crates: String,
            expires_at: Option<i64>,
            stage: Option<String>,
            stage_state: Option<String>,
            stage_expires: Option<i64>,
            parent_id: Option<String>,
            parent_found: bool,
            parent_expires: Option<i64>,
        }
        let row: Option<Row> = self.read(|conn| {
            conn.prepare_cached(
                "SELECT t.user_id, u.login, t.hash, t.scopes, t.crates, t.expires_at, t.stage_id,
                        s.state, s.expires_at, t.parent_id, p.id IS NOT NULL, p.expires_at
                 FROM tokens t JOIN users u ON u.id = t.user_id
                 LEFT JOIN stages s ON s.id = t.stage_id
                 LEFT JOIN tokens p ON p.id = t.parent_id
                 WHERE t.id = ?1",
            )
            .map_err(db)?
            .query_row([id], |r| {
                Ok(Row {
                    user_id: r.get(0)?,
                    login: r.get(1)?,
                    hash: r.get(2)?,
                    scopes: r.get(3)?,
                    crates: r.get(4)?,
                    expires_at: r.get(5)?,
                    stage: r.get(6)?,
                    stage_state: r.get(7)?,
                    stage_expires: r.get(8)?,
                    parent_id: r.get(9)?,
                    parent_found: r.get(10)?,
                    parent_expires: r.get(11)?,
                })
            })
            .optional()
            .map_err(db)
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        if !hashes_match(presented, &row.hash) {
            return Ok(None);
        }
        let now = now_secs();
        if row.expires_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        // A stage token works only while its stage is open.
        if row.stage.is_some()
            && (row.stage_state.as_deref() != Some("open")
                || row.stage_expires.is_none_or(|t| t <= now))
        {
            return Ok(None);
        }
        // ... and while the token that opened the stage still works.
        if row.parent_id.is_some()
            && (!row.parent_found || row.parent_expires.is_some_and(|t| t <= now))
        {
            return Ok(None);
        }
        lock(&self.downloads).token_uses.insert(id.to_owned(), now);
        Ok(Some(AuthenticatedToken {
            id: id.to_owned(),
            expires_at: row.expires_at.map(from_secs),
            user_id: row.user_id,
            login: row.login,
            scopes: split_list(&row.scopes)
                .filter_map(|s| s.parse().ok())
                .collect(),
            crates: split_list(&row.crates)
                .filter_map(|s| CrateGlob::new(s).ok())
                .collect(),
            stage: row.stage,
        }))
    }

    fn tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        let pending = lock(&self.downloads).token_uses.clone();
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    // Stage tokens of closed stages can never work again.
                    "SELECT id, name, scopes, crates, created_at, expires_at, last_used_at, stage_id
                     FROM tokens WHERE user_id = ?1
                     AND (stage_id IS NULL
                          OR stage_id IN (SELECT id FROM stages WHERE state = 'open'))
                     ORDER BY created_at, id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([user], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, scopes, crates, created, expires, used, stage) = row.map_err(db)?;
                let used = pending.get(&id).copied().or(used);
                out.push(TokenInfo {
                    name,
                    scopes: split_list(&scopes).filter_map(|s| s.parse().ok()).collect(),
                    crates: split_list(&crates)
                        .filter_map(|s| CrateGlob::new(s).ok())
                        .collect(),
                    created_at: from_secs(created),
                    expires_at: expires.map(from_secs),
                    last_used_at: used.map(from_secs),
                    stage,
                    id,
                });
            }
            Ok(out)
        })
    }

    fn revoke_token(&self, user: UserId, id: &str) -> StoreResult<bool> {
        let revoked = self.write(
            |tx| {
                let n = tx
                    .execute(
                        "DELETE FROM tokens WHERE id = ?1 AND user_id = ?2",
                        params![id, user],
                    )
                    .map_err(db)?;
                if n > 0 {
                    // Stage tokens die with the token that opened their
                    // stage, and so do the stages: what a leaked token
                    // uploaded must not be committed by anyone.
                    tx.execute("DELETE FROM tokens WHERE parent_id = ?1", [id])
                        .map_err(db)?;
                    staging::discard_opened_by(tx, id)?;
                }
                Ok(n > 0)
            },
            |_| {},
        )?;
        lock(&self.downloads).token_uses.remove(id);
        Ok(revoked)
    }

    fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT cksum FROM versions WHERE state IN ('published', 'staged')",
                )
                .map_err(db)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
            rows.collect::<Result<HashSet<_>, _>>().map_err(db)
        })
    }

    fn create_token(&self, token: NewToken) -> StoreResult<TokenSecret> {
        let secret = TokenSecret::generate();
        let scopes = rules::token_scopes(&token.scopes);
        let crates = rules::join_list(token.crates.iter().map(|g| g.as_str()));
        let expires = token.expires_at.map(rules::to_secs);
        let hash = hash_token(secret.expose());
        self.write(
            |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO users (login, created_at) VALUES (?1, ?2)",
                    params![token.login, now_secs()],
                )
                .map_err(db)?;
                let user = user_id(tx, &token.login)?.ok_or_else(|| StoreError::UserNotFound {
                    login: token.login.clone(),
                })?;
                tx.execute(
                    "INSERT INTO tokens (id, user_id, name, hash, scopes, crates, expires_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![secret.id(), user, token.name, hash.as_slice(), scopes, crates, expires, now_secs()],
                )
                .map_err(db)?;
                Ok(())
            },
            |_| {},
        )?;
        Ok(secret)
    }
}

/// The facts [`rules::validate_publish`] judges, read in `conn`. A
/// dependency exists when it is published, or staged in the same stage when
/// staging: a crate in someone else's open stage is invisible.
fn publish_facts(
    conn: &Connection,
    new: &NewVersion,
    stage: Option<&str>,
) -> StoreResult<PublishFacts> {
    let line = &new.line;
    let mut facts = PublishFacts {
        krate: None,
        slot: None,
        missing_dependencies: Vec::new(),
    };
    if let Some(krate) = find_crate(conn, &line.name)? {
        facts.slot = conn
            .prepare_cached(
                "SELECT v.id, v.state, v.cksum, s.expires_at FROM versions v
                 LEFT JOIN stages s ON s.id = v.stage_id
                 WHERE v.crate_id = ?1 AND v.num_key = ?2",
            )
            .map_err(db)?
            .query_row(params![krate.id, rules::version_key(&line.vers)], |r| {
                Ok(Slot {
                    row: r.get(0)?,
                    state: r.get(1)?,
                    cksum: r.get(2)?,
                    stage_expires_at: r.get(3)?,
                })
            })
            .optional()
            .map_err(db)?;
        // A companion's owners are its parent's.
        let owner = companions::owner_crate(
            conn,
            CrateRow {
                id: krate.id,
                name: krate.name.clone(),
            },
        )?;
        facts.krate = Some(ExistingCrate {
            publisher_owns: is_owner(conn, owner.id, new.publisher)?,
            owner_name: owner.name,
            id: krate.id,
            name: krate.name,
        });
    }
    for dep in rules::dependency_names(line) {
        let known = find_visible_crate(conn, &dep)?.is_some()
            || match stage {
                Some(stage) => staging::staged_in(conn, stage, &dep)?,
                None => false,
            };
        if !known {
            facts.missing_dependencies.push(dep);
        }
    }
    Ok(facts)
}

/// Every rule a publish must pass, read-only, so that the server can refuse
/// before it writes a blob and the write transaction can re-check under the
/// lock with the very same code.
fn validate_publish(
    conn: &Connection,
    new: &NewVersion,
    stage: Option<&str>,
) -> StoreResult<rules::Checked> {
    let facts = publish_facts(conn, new, stage)?;
    let checked = rules::validate_publish(new, &facts)?;
    let existing = facts.krate.map(|k| CrateRow {
        id: k.id,
        name: k.name,
    });
    companions::validate(conn, new, existing.as_ref())?;
    Ok(checked)
}

fn max_version(conn: &Connection, crate_id: i64) -> StoreResult<String> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT num, yanked FROM versions WHERE crate_id = ?1 AND state = 'published'",
        )
        .map_err(db)?;
    let versions = stmt
        .query_map([crate_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    Ok(rules::max_version(&versions))
}

#[async_trait]
impl Store for SqliteStore {
    async fn index_file(&self, name: &str) -> StoreResult<Option<IndexFile>> {
        let cache = self
            .inner
            .index_cache
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(cache.get(&canonical_name(name)).cloned())
    }

    async fn check_publish(
        &self,
        version: &NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome> {
        let version = version.clone();
        let stage = stage.map(str::to_owned);
        self.blocking(move |s| s.check_publish(&version, stage.as_deref()))
            .await
    }

    async fn publish(&self, version: NewVersion) -> StoreResult<PublishOutcome> {
        self.blocking(move |s| s.publish_into(version, None)).await
    }

    async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<()> {
        let (name, version) = (name.to_owned(), version.to_owned());
        self.blocking(move |s| s.set_yanked(&name, &version, yanked, actor))
            .await
    }

    async fn download(&self, name: &str, version: &str) -> StoreResult<Option<String>> {
        if let Some((cksum, due)) = self.inner.download_cached(name, version) {
            if due {
                // At most once a second one download writes the counts, so
                // what it counted is visible when it returns.
                self.blocking(|s| s.flush_downloads()).await?;
            }
            return Ok(Some(cksum));
        }
        let (name, version) = (name.to_owned(), version.to_owned());
        self.blocking(move |s| s.download(&name, &version)).await
    }

    async fn owners(&self, name: &str) -> StoreResult<Vec<Owner>> {
        let name = name.to_owned();
        self.blocking(move |s| s.owners(&name)).await
    }

    async fn add_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()> {
        let (name, logins) = (name.to_owned(), logins.to_vec());
        self.blocking(move |s| s.change_owners(&name, &logins, actor, true))
            .await
    }

    async fn remove_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()> {
        let (name, logins) = (name.to_owned(), logins.to_vec());
        self.blocking(move |s| s.change_owners(&name, &logins, actor, false))
            .await
    }

    async fn search(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<SearchHit>, u64)> {
        let query = query.to_owned();
        self.blocking(move |s| s.search(&query, page, per_page))
            .await
    }

    async fn authenticate(&self, presented: &str) -> StoreResult<Option<AuthenticatedToken>> {
        let presented = presented.to_owned();
        self.blocking(move |s| s.authenticate(&presented)).await
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<TokenSecret> {
        self.blocking(move |s| s.create_token(token)).await
    }

    async fn user_id(&self, login: &str) -> StoreResult<Option<UserId>> {
        let login = login.to_owned();
        self.blocking(move |s| s.read(|conn| user_id(conn, &login)))
            .await
    }

    async fn take_publish_token(
        &self,
        user: UserId,
        limit: crate::RateLimit,
    ) -> StoreResult<Result<(), Duration>> {
        let mut buckets = lock(&self.inner.buckets);
        let (bucket, verdict) =
            rules::take_token(limit, buckets.get(&user).copied(), rules::now_millis());
        buckets.insert(user, bucket);
        Ok(verdict)
    }

    async fn flush(&self) -> StoreResult<()> {
        self.blocking(|s| s.flush_downloads()).await
    }

    async fn tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        self.blocking(move |s| s.tokens(user)).await
    }

    async fn revoke_token(&self, user: UserId, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |s| s.revoke_token(user, &id)).await
    }

    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.blocking(|s| s.referenced_blobs()).await
    }

    async fn download_count(&self, name: &str, version: &str) -> StoreResult<Option<u64>> {
        let (name, version) = (name.to_owned(), version.to_owned());
        self.blocking(move |s| s.download_count(&name, &version))
            .await
    }

    async fn stage_version(&self, version: NewVersion, stage: &str) -> StoreResult<PublishOutcome> {
        let stage = stage.to_owned();
        self.blocking(move |s| s.publish_into(version, Some(&stage)))
            .await
    }

    async fn create_stage(
        &self,
        creator: &AuthenticatedToken,
        ttl: Duration,
    ) -> StoreResult<(StageRecord, TokenSecret)> {
        let creator = creator.clone();
        self.blocking(move |s| s.create_stage(&creator, ttl)).await
    }

    async fn stage(&self, id: &str) -> StoreResult<Option<StageRecord>> {
        let id = id.to_owned();
        self.blocking(move |s| s.stage(&id)).await
    }

    async fn open_stages(&self, user: UserId) -> StoreResult<Vec<StageRecord>> {
        self.blocking(move |s| s.open_stages(user)).await
    }

    async fn extend_stage(&self, id: &str, ttl: Duration) -> StoreResult<StageRecord> {
        let id = id.to_owned();
        self.blocking(move |s| s.extend_stage(&id, ttl)).await
    }

    async fn commit_stage(&self, id: &str, actor: UserId) -> StoreResult<Release> {
        let id = id.to_owned();
        self.blocking(move |s| s.commit_stage(&id, actor)).await
    }

    async fn abort_stage(&self, id: &str) -> StoreResult<StageRecord> {
        let id = id.to_owned();
        self.blocking(move |s| s.abort_stage(&id)).await
    }

    async fn expire_stages(&self) -> StoreResult<usize> {
        self.blocking(|s| s.expire_stages()).await
    }

    async fn stage_index_file(&self, stage: &str, name: &str) -> StoreResult<Option<Bytes>> {
        let (stage, name) = (stage.to_owned(), name.to_owned());
        self.blocking(move |s| s.stage_index_file(&stage, &name))
            .await
    }

    async fn stage_download(
        &self,
        stage: &str,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<String>> {
        let (stage, name, version) = (stage.to_owned(), name.to_owned(), version.to_owned());
        self.blocking(move |s| s.stage_download(&stage, &name, &version))
            .await
    }

    async fn release(&self, id: &str) -> StoreResult<Option<Release>> {
        let id = id.to_owned();
        self.blocking(move |s| s.release(&id)).await
    }

    async fn companions(&self, parent: &str) -> StoreResult<Vec<String>> {
        let parent = parent.to_owned();
        self.blocking(move |inner| inner.read(|conn| companions::companions_of(conn, &parent)))
            .await
    }

    async fn yank_release(&self, id: &str, yanked: bool, actor: UserId) -> StoreResult<Release> {
        let id = id.to_owned();
        self.blocking(move |s| s.yank_release(&id, yanked, actor))
            .await
    }

    // Browsing, for the web UI: `sqlite/browse.rs`.

    async fn crate_details(&self, name: &str) -> StoreResult<Option<CrateDetails>> {
        let name = name.to_owned();
        self.blocking(move |s| s.crate_details(&name)).await
    }

    async fn version_meta(&self, name: &str, version: &str) -> StoreResult<Option<VersionMeta>> {
        let (name, version) = (name.to_owned(), version.to_owned());
        self.blocking(move |s| s.version_meta(&name, &version))
            .await
    }

    async fn reverse_dependencies(&self, name: &str) -> StoreResult<Vec<Dependent>> {
        let name = name.to_owned();
        self.blocking(move |s| s.reverse_dependencies(&name)).await
    }

    async fn daily_downloads(&self, name: &str, days: u32) -> StoreResult<Vec<(i64, u64)>> {
        let name = name.to_owned();
        self.blocking(move |s| s.daily_downloads(&name, days)).await
    }

    async fn user_crates(&self, login: &str) -> StoreResult<Option<Vec<CrateSummary>>> {
        let login = login.to_owned();
        self.blocking(move |s| s.user_crates(&login)).await
    }

    async fn recent_crates(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        self.blocking(move |s| s.recent_crates(limit)).await
    }

    async fn most_downloaded(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        self.blocking(move |s| s.most_downloaded(limit)).await
    }

    async fn search_summaries(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<CrateSummary>, u64)> {
        let query = query.to_owned();
        self.blocking(move |s| s.search_summaries(&query, page, per_page))
            .await
    }

    async fn totals(&self) -> StoreResult<Totals> {
        self.blocking(|s| s.totals()).await
    }

    async fn session_key(&self) -> StoreResult<Vec<u8>> {
        self.blocking(|s| s.session_key()).await
    }
}

impl SqliteStore {
    /// Creates a token without a runtime; used by `cargo convoy token create`,
    /// which may run while a server holds the same database.
    pub fn create_token_blocking(&self, token: NewToken) -> StoreResult<TokenSecret> {
        self.inner.create_token(token)
    }

    /// The tokens of the user `login`, for `cargo convoy token list`.
    pub fn tokens_blocking(&self, login: &str) -> StoreResult<Vec<TokenInfo>> {
        let user = self.require_user(login)?;
        self.inner.tokens(user)
    }

    /// Revokes one token of `login` (`Some(id)`) or all of them; returns the
    /// ids revoked. For `cargo convoy token revoke`: a server on the same
    /// database stops accepting them at once, since every request reads the
    /// token row.
    pub fn revoke_tokens_blocking(
        &self,
        login: &str,
        id: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let user = self.require_user(login)?;
        let ids: Vec<String> = match id {
            Some(id) => vec![id.to_owned()],
            None => self
                .inner
                .tokens(user)?
                .into_iter()
                .filter(|t| t.stage.is_none())
                .map(|t| t.id)
                .collect(),
        };
        let mut revoked = Vec::new();
        for id in ids {
            if self.inner.revoke_token(user, &id)? {
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    fn require_user(&self, login: &str) -> StoreResult<UserId> {
        self.inner
            .read(|conn| user_id(conn, login))?
            .ok_or_else(|| StoreError::UserNotFound {
                login: login.to_owned(),
            })
    }
}

mod browse;
mod companions;
mod staging;
