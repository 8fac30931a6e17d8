//! The scale-out backend: PostgreSQL, shared by any number of stateless
//! `cargo convoy serve` nodes.
//!
//! The driver is tokio-postgres with a deadpool pool: both are plain async
//! crates that build without a database (sqlx's compile-time checked
//! queries would need one, or an offline cache to keep in step), and the
//! SQL here is small enough that typed rows buy little.
//!
//! How the [`Store`] guarantees hold across nodes:
//!
//! - **Per-crate serialization.** Every write that touches a crate first
//!   takes `pg_advisory_xact_lock` on a hash of its canonical name (several
//!   crates: in name order, so two commits cannot deadlock), and only then
//!   reads what the rules need. Under `READ COMMITTED` every statement after
//!   the lock sees every commit that finished before it, so two nodes racing
//!   for one version see each other and exactly one wins. The unique
//!   `(crate_id, num_key)` constraint backs this up.
//! - **Read-your-writes.** The rendered index file is written in the same
//!   transaction as the version rows, and [`Store::index_file`] reads it from
//!   the database on every request (one primary-key lookup): there is no
//!   node-local cache that could be stale. `docs/DEPLOY.md` gives the
//!   measurements behind that choice.
//! - **Stage commit** is one transaction that locks the stage's row, then
//!   flips its versions and rewrites their index files.
//! - **Shared state** (rate buckets, download counts) is in tables. Download
//!   counts are buffered per node and flushed every second and on
//!   [`Store::flush`].

mod browse;
mod companions;
mod import;
mod schema;
mod staging;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use convoy_protocol::api::{Owner, SearchHit};
use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::rules::{self, ExistingCrate, PublishFacts, Slot, now_secs};
use crate::token::{hashes_match, token_id};
use crate::{
    AuthenticatedToken, IndexFile, NewToken, NewVersion, PublishOutcome, RateLimit, Release,
    StageRecord, Store, StoreError, StoreResult, TokenInfo, TokenSecret, UserId, hash_token,
};

/// How many connections one node keeps at most.
const POOL_SIZE: usize = 16;

pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(e)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::backend(e)
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Published versions' `(canonical, num)` → `(row id, cksum)`. Safe to
    /// keep on every node: a published version's checksum never changes and
    /// a published version is never removed.
    published: RwLock<HashMap<(String, String), (i64, String)>>,
    downloads: Mutex<rules::PendingDownloads>,
    /// Fault injection for crash tests: how long a commit holds its
    /// transaction open before committing.
    commit_delay: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PgStore {
    /// Connects to `url` (`postgres://USER[:PASS]@HOST:PORT/DB`) and runs
    /// the embedded migrations. Must run inside a Tokio runtime, which also
    /// runs the once-a-second flush of download counts.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, Duration::ZERO).await
    }

    /// [`PgStore::connect`] with a commit delay for crash tests: every stage
    /// commit holds its transaction open for `commit_delay`.
    pub async fn connect_with(url: &str, commit_delay: Duration) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(pg)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(StoreError::backend)?;
        schema::migrate(&pool).await?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                published: RwLock::default(),
                downloads: Mutex::default(),
                commit_delay,
            }),
        };
        let weak = Arc::downgrade(&store.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(rules::DOWNLOAD_FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = inner.flush_downloads().await {
                    tracing::warn!(error = %e, "could not write download counts");
                }
            }
        });
        Ok(store)
    }

    /// Creates a token; for `cargo convoy token create`.
    pub async fn create_token_now(&self, token: NewToken) -> StoreResult<TokenSecret> {
        self.create_token(token).await
    }
}

/// Takes the per-crate write locks of `canonicals`, in name order.
async fn lock_crates(
    tx: &deadpool_postgres::Transaction<'_>,
    canonicals: impl IntoIterator<Item = &str>,
) -> StoreResult<()> {
    let mut names: Vec<&str> = canonicals.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&name],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

struct CrateRow {
    id: i64,
    name: String,
}

async fn find_crate(c: &impl GenericClient, name: &str) -> StoreResult<Option<CrateRow>> {
    let row = c
        .query_opt(
            "SELECT id, name FROM crates WHERE canonical = $1",
            &[&canonical_name(name)],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| CrateRow {
        id: r.get(0),
        name: r.get(1),
    }))
}

/// A crate that readers can see: one with a published version. A crate row
/// that only staged or discarded versions created does not exist to anyone
/// outside its stage.
async fn find_visible_crate(c: &impl GenericClient, name: &str) -> StoreResult<Option<CrateRow>> {
    let row = c
        .query_opt(
            "SELECT c.id, c.name FROM crates c WHERE c.canonical = $1
             AND EXISTS (SELECT 1 FROM versions v WHERE v.crate_id = c.id AND v.state = 'published')",
            &[&canonical_name(name)],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| CrateRow {
        id: r.get(0),
        name: r.get(1),
    }))
}

async fn require_crate(c: &impl GenericClient, name: &str) -> StoreResult<CrateRow> {
    find_visible_crate(c, name)
        .await?
        .ok_or_else(|| StoreError::CrateNotFound {
            name: name.to_owned(),
        })
}

/// Whether `name` has a version staged in stage `stage`.
async fn staged_in(c: &impl GenericClient, stage: &str, name: &str) -> StoreResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM versions v JOIN crates c ON c.id = v.crate_id
         WHERE c.canonical = $1 AND v.stage_id = $2 AND v.state = 'staged' LIMIT 1",
        &[&canonical_name(name), &stage],
    )
    .await
    .map_err(pg)?
    .is_some())
}

pub(crate) async fn is_owner(
    c: &impl GenericClient,
    crate_id: i64,
    user: UserId,
) -> StoreResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM owners WHERE crate_id = $1 AND user_id = $2",
        &[&crate_id, &user],
    )
    .await
    .map_err(pg)?
    .is_some())
}

async fn require_owner(c: &impl GenericClient, krate: &CrateRow, user: UserId) -> StoreResult<()> {
    if is_owner(c, krate.id, user).await? {
        Ok(())
    } else {
        Err(StoreError::NotOwner {
            name: krate.name.clone(),
        })
    }
}

async fn user_id(c: &impl GenericClient, login: &str) -> StoreResult<Option<UserId>> {
    Ok(
        c.query_opt("SELECT id FROM users WHERE login = $1", &[&login])
            .await
            .map_err(pg)?
            .map(|r| r.get(0)),
    )
}

/// The facts [`rules::validate_publish`] judges, read in `c`. A dependency
/// exists when it is published, or staged in the same stage when staging:
/// a crate in someone else's open stage is invisible.
async fn publish_facts(
    c: &impl GenericClient,
    new: &NewVersion,
    stage: Option<&str>,
) -> StoreResult<PublishFacts> {
    let line = &new.line;
    let mut facts = PublishFacts {
        krate: None,
        slot: None,
        missing_dependencies: Vec::new(),
    };
    if let Some(krate) = find_crate(c, &line.name).await? {
        // A companion's owners are its parent's.
        let owner = companions::owner_crate(
            c,
            CrateRow {
                id: krate.id,
                name: krate.name.clone(),
            },
        )
        .await?;
        let publisher_owns = is_owner(c, owner.id, new.publisher).await?;
        let slot = c
            .query_opt(
                "SELECT v.id, v.state, v.cksum, s.expires_at FROM versions v
                 LEFT JOIN stages s ON s.id = v.stage_id
                 WHERE v.crate_id = $1 AND v.num_key = $2",
                &[&krate.id, &rules::version_key(&line.vers)],
            )
            .await
            .map_err(pg)?;
        facts.slot = slot.map(|r| Slot {
            row: r.get(0),
            state: r.get(1),
            cksum: r.get(2),
            stage_expires_at: r.get(3),
        });
        facts.krate = Some(ExistingCrate {
            id: krate.id,
            owner_name: owner.name,
            name: krate.name,
            publisher_owns,
        });
    }
    for dep in rules::dependency_names(line) {
        let known = find_visible_crate(c, &dep).await?.is_some()
            || match stage {
                Some(stage) => staged_in(c, stage, &dep).await?,
                None => false,
            };
        if !known {
            facts.missing_dependencies.push(dep);
        }
    }
    Ok(facts)
}

/// Every rule a publish must pass: the neutral ones, then the companion
/// ones.
async fn validate_publish(
    c: &impl GenericClient,
    new: &NewVersion,
    stage: Option<&str>,
) -> StoreResult<rules::Checked> {
    let facts = publish_facts(c, new, stage).await?;
    let checked = rules::validate_publish(new, &facts)?;
    let existing = facts.krate.map(|k| CrateRow {
        id: k.id,
        name: k.name,
    });
    companions::validate(c, new, existing.as_ref()).await?;
    Ok(checked)
}

/// Rewrites a crate's index file from its published rows, inside `tx`.
pub(crate) async fn render_index_file(
    tx: &deadpool_postgres::Transaction<'_>,
    crate_id: i64,
    canonical: &str,
) -> StoreResult<Option<IndexFile>> {
    let rows = tx
        .query(
            "SELECT line FROM versions WHERE crate_id = $1 AND state = 'published' ORDER BY id",
            &[&crate_id],
        )
        .await
        .map_err(pg)?;
    let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let Some(file) = rules::render_index(
        lines.iter().map(String::as_str),
        std::time::SystemTime::now(),
    ) else {
        tx.execute("DELETE FROM index_files WHERE crate_id = $1", &[&crate_id])
            .await
            .map_err(pg)?;
        return Ok(None);
    };
    let content: &[u8] = &file.content;
    tx.execute(
        "INSERT INTO index_files (crate_id, canonical, content, etag, modified_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (crate_id) DO UPDATE SET content = $3, etag = $4, modified_ms = $5",
        &[
            &crate_id,
            &canonical,
            &content,
            &file.etag,
            &rules::to_millis(file.last_modified),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(Some(file))
}

impl Inner {
    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Publishes `new`, or stages it into `stage` (invisible until the
    /// stage commits). Both paths run the same checks and the same insert.
    pub(crate) async fn publish_into(
        &self,
        new: NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome> {
        let line = &new.line;
        let canonical = canonical_name(&line.name);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock_crates(&tx, [canonical.as_str()]).await?;
        if let Some(stage) = stage {
            staging::lock_open(&tx, stage, false).await?;
        }
        let checked = validate_publish(&tx, &new, stage).await?;
        let now = now_secs();
        // A staged description stays on its version row until the stage
        // commits: search must not show it before.
        let shown = if stage.is_some() {
            None
        } else {
            new.description.as_deref()
        };
        let crate_id = match checked.crate_id {
            Some(id) => {
                if stage.is_none() {
                    tx.execute(
                        "UPDATE crates SET description = $2 WHERE id = $1",
                        &[&id, &shown],
                    )
                    .await
                    .map_err(pg)?;
                }
                id
            }
            None => {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO crates (name, canonical, description, created_at)
                         VALUES ($1, $2, $3, $4) RETURNING id",
                        &[&line.name, &canonical, &shown, &now],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                tx.execute(
                    "INSERT INTO owners (crate_id, user_id) VALUES ($1, $2)",
                    &[&id, &new.publisher],
                )
                .await
                .map_err(pg)?;
                id
            }
        };
        companions::record(&tx, crate_id, &new).await?;
        let json = serde_json::to_string(line).map_err(StoreError::backend)?;
        let state = if stage.is_some() {
            "staged"
        } else {
            "published"
        };
        let version_id: i64 = if let Some(row) = checked.reuse_row {
            // The slot of an aborted stage, reused with the same bytes.
            tx.execute(
                "UPDATE versions SET num = $2, line = $3, yanked = FALSE, state = $4, stage_id = $5,
                 published_by = $6, created_at = $7, description = $8 WHERE id = $1",
                &[
                    &row,
                    &line.vers,
                    &json,
                    &state,
                    &stage,
                    &new.publisher,
                    &now,
                    &new.description,
                ],
            )
            .await
            .map_err(pg)?;
            row
        } else {
            tx.query_one(
                "INSERT INTO versions (crate_id, num, num_key, cksum, yanked, line, published_by,
                 created_at, state, stage_id, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
                    &crate_id,
                    &line.vers,
                    &rules::version_key(&line.vers),
                    &line.cksum,
                    &line.yanked,
                    &json,
                    &new.publisher,
                    &now,
                    &state,
                    &stage,
                    &new.description,
                ],
            )
            .await
            .map_err(pg)?
            .get(0)
        };
        browse::record_version(&tx, version_id, &new).await?;
        if stage.is_none() {
            render_index_file(&tx, crate_id, &canonical).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(checked.outcome)
    }

    async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<()> {
        let canonical = canonical_name(name);
        let mut client = self.client().await?;
        let mut locked = companions::canonicals_of(&client, name).await?;
        locked.push(canonical.clone());
        let tx = client.transaction().await.map_err(pg)?;
        lock_crates(&tx, locked.iter().map(String::as_str)).await?;
        let krate = require_crate(&tx, name).await?;
        let owner = companions::owner_crate(
            &tx,
            CrateRow {
                id: krate.id,
                name: krate.name.clone(),
            },
        )
        .await?;
        require_owner(&tx, &owner, actor).await?;
        let row = tx
            .query_opt(
                // A staged version is not published yet, so there is
                // nothing to yank: a commit would publish it yanked.
                "SELECT id, line FROM versions WHERE crate_id = $1 AND num = $2
                 AND state = 'published'",
                &[&krate.id, &version],
            )
            .await
            .map_err(pg)?;
        let Some(row) = row else {
            return Err(StoreError::VersionNotFound {
                name: krate.name,
                version: version.to_owned(),
            });
        };
        let (version_id, line): (i64, String) = (row.get(0), row.get(1));
        let mut line: IndexPackage = serde_json::from_str(&line).map_err(StoreError::backend)?;
        line.yanked = yanked;
        let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
        tx.execute(
            "UPDATE versions SET yanked = $2, line = $3 WHERE id = $1",
            &[&version_id, &yanked, &json],
        )
        .await
        .map_err(pg)?;
        render_index_file(&tx, krate.id, &canonical).await?;
        companions::cascade_yank(&tx, &krate.name, version, yanked).await?;
        tx.commit().await.map_err(pg)?;
        Ok(())
    }

    async fn download(&self, name: &str, version: &str) -> StoreResult<Option<String>> {
        let key = (canonical_name(name), version.to_owned());
        let cached = self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let (id, cksum) = match cached {
            Some(found) => found,
            None => {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(
                        "SELECT v.id, v.cksum FROM versions v JOIN crates c ON c.id = v.crate_id
                         WHERE c.canonical = $1 AND v.num = $2 AND v.state = 'published'",
                    )
                    .await
                    .map_err(pg)?;
                let Some(row) = client
                    .query_opt(&stmt, &[&key.0, &key.1])
                    .await
                    .map_err(pg)?
                else {
                    return Ok(None);
                };
                let found: (i64, String) = (row.get(0), row.get(1));
                self.published
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, found.clone());
                found
            }
        };
        lock(&self.downloads).add(id);
        Ok(Some(cksum))
    }

    async fn flush_downloads(&self) -> StoreResult<()> {
        let (batch, uses) = {
            let mut pending = lock(&self.downloads);
            (pending.take(), std::mem::take(&mut pending.token_uses))
        };
        if batch.is_empty() && uses.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            // In id order, so two nodes flushing at once cannot deadlock.
            let mut rows: Vec<(i64, u64)> = batch.iter().map(|(k, v)| (*k, *v)).collect();
            rows.sort_unstable();
            for &(id, n) in &rows {
                tx.execute(
                    "UPDATE versions SET downloads = downloads + $2 WHERE id = $1",
                    &[&id, &(n as i64)],
                )
                .await
                .map_err(pg)?;
            }
            browse::record_daily(&tx, &rows).await?;
            let mut uses: Vec<(&String, &i64)> = uses.iter().collect();
            uses.sort_unstable();
            for (id, at) in uses {
                tx.execute(
                    "UPDATE tokens SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2)
                     WHERE id = $1",
                    &[id, at],
                )
                .await
                .map_err(pg)?;
            }
            tx.commit().await.map_err(pg)
        }
        .await;
        if result.is_err() {
            lock(&self.downloads).restore(batch);
        }
        result
    }

    async fn download_count(&self, name: &str, version: &str) -> StoreResult<Option<u64>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT v.id, v.downloads FROM versions v JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = $1 AND v.num = $2",
                &[&canonical_name(name), &version],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| {
            let (id, stored): (i64, i64) = (r.get(0), r.get(1));
            let pending = lock(&self.downloads).counts.get(&id).copied().unwrap_or(0);
            stored.max(0) as u64 + pending
        }))
    }

    async fn owners(&self, name: &str) -> StoreResult<Vec<Owner>> {
        let client = self.client().await?;
        let krate = companions::owner_crate(&client, require_crate(&client, name).await?).await?;
        let rows = client
            .query(
                "SELECT u.id, u.login FROM owners o JOIN users u ON u.id = o.user_id
                 WHERE o.crate_id = $1 ORDER BY u.login",
                &[&krate.id],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| Owner {
                id: r.get::<_, i64>(0) as u32,
                login: r.get(1),
                name: None,
            })
            .collect())
    }

    async fn change_owners(
        &self,
        name: &str,
        logins: &[String],
        actor: UserId,
        add: bool,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock_crates(&tx, [canonical_name(name).as_str()]).await?;
        let krate = require_crate(&tx, name).await?;
        companions::refuse_owner_change(&tx, &krate).await?;
        require_owner(&tx, &krate, actor).await?;
        for login in logins {
            let Some(user) = user_id(&tx, login).await? else {
                return Err(StoreError::UserNotFound {
                    login: login.clone(),
                });
            };
            let sql = if add {
                "INSERT INTO owners (crate_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM owners WHERE crate_id = $1 AND user_id = $2"
            };
            tx.execute(sql, &[&krate.id, &user]).await.map_err(pg)?;
        }
        let left: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM owners WHERE crate_id = $1",
                &[&krate.id],
            )
            .await
            .map_err(pg)?
            .get(0);
        if left == 0 {
            return Err(StoreError::LastOwner { name: krate.name });
        }
        tx.commit().await.map_err(pg)
    }

    async fn search(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<SearchHit>, u64)> {
        let (name_pattern, text_pattern, exact) = rules::search_patterns(query);
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let client = self.client().await?;
        let filter = format!(
            "(c.canonical LIKE $1 ESCAPE '\\' OR c.description ILIKE $2 ESCAPE '\\')
             AND EXISTS (SELECT 1 FROM versions p WHERE p.crate_id = c.id AND p.state = 'published')
             AND {}",
            companions::NOT_A_COMPANION
        );
        let total: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM crates c WHERE {filter}"),
                &[&name_pattern, &text_pattern],
            )
            .await
            .map_err(pg)?
            .get(0);
        let rows = client
            .query(
                &format!(
                    "SELECT c.id, c.name, c.description FROM crates c WHERE {filter}
                     ORDER BY c.canonical = $3 DESC, c.canonical LIMIT $4 OFFSET $5"
                ),
                &[
                    &name_pattern,
                    &text_pattern,
                    &exact,
                    &i64::from(per_page),
                    &offset,
                ],
            )
            .await
            .map_err(pg)?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            let versions: Vec<(String, bool)> = client
                .query(
                    "SELECT num, yanked FROM versions WHERE crate_id = $1 AND state = 'published'",
                    &[&id],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            hits.push(SearchHit {
                name: row.get(1),
                max_version: rules::max_version(&versions),
                description: row.get(2),
            });
        }
        Ok((hits, total.max(0) as u64))
    }

    async fn authenticate(&self, presented: &str) -> StoreResult<Option<AuthenticatedToken>> {
        let Some(id) = token_id(presented) else {
            return Ok(None);
        };
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT t.user_id, u.login, t.hash, t.scopes, t.crates, t.expires_at, t.stage_id,
                        s.state, s.expires_at, t.parent_id, p.id IS NOT NULL, p.expires_at
                 FROM tokens t JOIN users u ON u.id = t.user_id
                 LEFT JOIN stages s ON s.id = t.stage_id
                 LEFT JOIN tokens p ON p.id = t.parent_id
                 WHERE t.id = $1",
            )
            .await
            .map_err(pg)?;
        let Some(row) = client.query_opt(&stmt, &[&id]).await.map_err(pg)? else {
            return Ok(None);
        };
        let hash: Vec<u8> = row.get(2);
        if !hashes_match(presented, &hash) {
            return Ok(None);
        }
        let expires_at: Option<i64> = row.get(5);
        let stage: Option<String> = row.get(6);
        let state: Option<String> = row.get(7);
        if !rules::token_usable(expires_at, stage.as_deref(), state.as_deref(), row.get(8)) {
            return Ok(None);
        }
        // ... and a stage token only while the token that opened the stage
        // still works.
        let parent: Option<String> = row.get(9);
        let parent_found: bool = row.get(10);
        let parent_expires: Option<i64> = row.get(11);
        if parent.is_some() && (!parent_found || parent_expires.is_some_and(|t| t <= now_secs())) {
            return Ok(None);
        }
        lock(&self.downloads)
            .token_uses
            .insert(id.to_owned(), now_secs());
        let scopes: String = row.get(3);
        let crates: String = row.get(4);
        Ok(Some(AuthenticatedToken {
            id: id.to_owned(),
            expires_at: expires_at.map(rules::from_secs),
            user_id: row.get(0),
            login: row.get(1),
            scopes: rules::parse_scopes(&scopes),
            crates: rules::parse_globs(&crates),
            stage,
        }))
    }

    async fn user_id(&self, login: &str) -> StoreResult<Option<UserId>> {
        let client = self.client().await?;
        user_id(&client, login).await
    }

    async fn tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        let pending = lock(&self.downloads).token_uses.clone();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, scopes, crates, created_at, expires_at, last_used_at, stage_id
                 FROM tokens WHERE user_id = $1 ORDER BY created_at, id",
                &[&user],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                let scopes: String = r.get(2);
                let crates: String = r.get(3);
                let used: Option<i64> = pending.get(&id).copied().or(r.get(6));
                TokenInfo {
                    name: r.get(1),
                    scopes: rules::parse_scopes(&scopes),
                    crates: rules::parse_globs(&crates),
                    created_at: rules::from_secs(r.get(4)),
                    expires_at: r.get::<_, Option<i64>>(5).map(rules::from_secs),
                    last_used_at: used.map(rules::from_secs),
                    stage: r.get(7),
                    id,
                }
            })
            .collect())
    }

    async fn revoke_token(&self, user: UserId, id: &str) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "DELETE FROM tokens WHERE id = $1 AND user_id = $2",
                &[&id, &user],
            )
            .await
            .map_err(pg)?;
        if n > 0 {
            // Stage tokens die with the token that opened their stage, and
            // so do the stages: what a leaked token uploaded must not be
            // committed by anyone.
            tx.execute("DELETE FROM tokens WHERE parent_id = $1", &[&id])
                .await
                .map_err(pg)?;
            staging::discard_opened_by(&tx, id).await?;
        }
        tx.commit().await.map_err(pg)?;
        lock(&self.downloads).token_uses.remove(id);
        Ok(n > 0)
    }

    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT DISTINCT cksum FROM versions WHERE state IN ('published', 'staged')",
                &[],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<TokenSecret> {
        let secret = TokenSecret::generate();
        let scopes = rules::token_scopes(&token.scopes);
        let crates = rules::join_list(token.crates.iter().map(|g| g.as_str()));
        let expires = token.expires_at.map(rules::to_secs);
        let hash = hash_token(secret.expose());
        let now = now_secs();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO users (login, created_at) VALUES ($1, $2) ON CONFLICT (login) DO NOTHING",
            &[&token.login, &now],
        )
        .await
        .map_err(pg)?;
        let user = user_id(&tx, &token.login)
            .await?
            .ok_or_else(|| StoreError::UserNotFound {
                login: token.login.clone(),
            })?;
        tx.execute(
            "INSERT INTO tokens (id, user_id, name, hash, scopes, crates, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &secret.id(),
                &user,
                &token.name,
                &hash.as_slice(),
                &scopes,
                &crates,
                &expires,
                &now,
            ],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(secret)
    }

    async fn take_publish_token(
        &self,
        user: UserId,
        limit: RateLimit,
    ) -> StoreResult<Result<(), Duration>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let now = rules::now_millis();
        tx.execute(
            "INSERT INTO rate_buckets (user_id, tokens, updated_ms) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO NOTHING",
            &[&user, &f64::from(limit.burst), &now],
        )
        .await
        .map_err(pg)?;
        let row = tx
            .query_one(
                "SELECT tokens, updated_ms FROM rate_buckets WHERE user_id = $1 FOR UPDATE",
                &[&user],
            )
            .await
            .map_err(pg)?;
        let bucket = rules::Bucket {
            tokens: row.get(0),
            updated_ms: row.get(1),
        };
        let (bucket, verdict) = rules::take_token(limit, Some(bucket), now);
        tx.execute(
            "UPDATE rate_buckets SET tokens = $2, updated_ms = $3 WHERE user_id = $1",
            &[&user, &bucket.tokens, &bucket.updated_ms],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(verdict)
    }

    async fn index_file(&self, name: &str) -> StoreResult<Option<IndexFile>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT content, etag, modified_ms FROM index_files WHERE canonical = $1",
            )
            .await
            .map_err(pg)?;
        let row = client
            .query_opt(&stmt, &[&canonical_name(name)])
            .await
            .map_err(pg)?;
        Ok(row.map(|r| IndexFile {
            content: Bytes::from(r.get::<_, Vec<u8>>(0)),
            etag: r.get(1),
            last_modified: rules::from_millis(r.get(2)),
        }))
    }

    async fn check_publish(
        &self,
        new: &NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome> {
        let client = self.client().await?;
        validate_publish(&client, new, stage)
            .await
            .map(|c| c.outcome)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn index_file(&self, name: &str) -> StoreResult<Option<IndexFile>> {
        self.inner.index_file(name).await
    }

    async fn check_publish(
        &self,
        version: &NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome> {
        self.inner.check_publish(version, stage).await
    }

    async fn publish(&self, version: NewVersion) -> StoreResult<PublishOutcome> {
        self.inner.publish_into(version, None).await
    }

    async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<()> {
        self.inner.set_yanked(name, version, yanked, actor).await
    }

    async fn download(&self, name: &str, version: &str) -> StoreResult<Option<String>> {
        self.inner.download(name, version).await
    }

    async fn owners(&self, name: &str) -> StoreResult<Vec<Owner>> {
        self.inner.owners(name).await
    }

    async fn add_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()> {
        self.inner.change_owners(name, logins, actor, true).await
    }

    async fn remove_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()> {
        self.inner.change_owners(name, logins, actor, false).await
    }

    async fn search(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<SearchHit>, u64)> {
        self.inner.search(query, page, per_page).await
    }

    async fn authenticate(&self, presented: &str) -> StoreResult<Option<AuthenticatedToken>> {
        self.inner.authenticate(presented).await
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<TokenSecret> {
        self.inner.create_token(token).await
    }

    async fn user_id(&self, login: &str) -> StoreResult<Option<UserId>> {
        self.inner.user_id(login).await
    }

    async fn tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        self.inner.tokens(user).await
    }

    async fn revoke_token(&self, user: UserId, id: &str) -> StoreResult<bool> {
        self.inner.revoke_token(user, id).await
    }

    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.inner.referenced_blobs().await
    }

    async fn download_count(&self, name: &str, version: &str) -> StoreResult<Option<u64>> {
        self.inner.download_count(name, version).await
    }

    async fn stage_version(&self, version: NewVersion, stage: &str) -> StoreResult<PublishOutcome> {
        self.inner.publish_into(version, Some(stage)).await
    }

    async fn create_stage(
        &self,
        creator: &AuthenticatedToken,
        ttl: Duration,
    ) -> StoreResult<(StageRecord, TokenSecret)> {
        self.inner.create_stage(creator, ttl).await
    }

    async fn stage(&self, id: &str) -> StoreResult<Option<StageRecord>> {
        self.inner.stage(id).await
    }

    async fn open_stages(&self, user: UserId) -> StoreResult<Vec<StageRecord>> {
        self.inner.open_stages(user).await
    }

    async fn extend_stage(&self, id: &str, ttl: Duration) -> StoreResult<StageRecord> {
        self.inner.extend_stage(id, ttl).await
    }

    async fn commit_stage(&self, id: &str, actor: UserId) -> StoreResult<Release> {
        self.inner.commit_stage(id, actor).await
    }

    async fn abort_stage(&self, id: &str) -> StoreResult<StageRecord> {
        self.inner.abort_stage(id).await
    }

    async fn expire_stages(&self) -> StoreResult<usize> {
        self.inner.expire_stages().await
    }

    async fn stage_index_file(&self, stage: &str, name: &str) -> StoreResult<Option<Bytes>> {
        self.inner.stage_index_file(stage, name).await
    }

    async fn stage_download(
        &self,
        stage: &str,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<String>> {
        self.inner.stage_download(stage, name, version).await
    }

    async fn release(&self, id: &str) -> StoreResult<Option<Release>> {
        self.inner.release(id).await
    }

    async fn yank_release(&self, id: &str, yanked: bool, actor: UserId) -> StoreResult<Release> {
        self.inner.yank_release(id, yanked, actor).await
    }

    async fn take_publish_token(
        &self,
        user: UserId,
        limit: RateLimit,
    ) -> StoreResult<Result<(), Duration>> {
        self.inner.take_publish_token(user, limit).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.inner.flush_downloads().await
    }

    async fn companions(&self, parent: &str) -> StoreResult<Vec<String>> {
        let client = self.inner.client().await?;
        companions::companions_of(&client, parent).await
    }

    // Browsing, for the web UI: `postgres/browse.rs`.

    async fn crate_details(&self, name: &str) -> StoreResult<Option<crate::CrateDetails>> {
        self.inner.crate_details(name).await
    }

    async fn version_meta(
        &self,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<crate::VersionMeta>> {
        self.inner.version_meta(name, version).await
    }

    async fn reverse_dependencies(&self, name: &str) -> StoreResult<Vec<crate::Dependent>> {
        self.inner.reverse_dependencies(name).await
    }

    async fn daily_downloads(&self, name: &str, days: u32) -> StoreResult<Vec<(i64, u64)>> {
        self.inner.daily_downloads(name, days).await
    }

    async fn user_crates(&self, login: &str) -> StoreResult<Option<Vec<crate::CrateSummary>>> {
        self.inner.user_crates(login).await
    }

    async fn recent_crates(&self, limit: u32) -> StoreResult<Vec<crate::CrateSummary>> {
        self.inner.recent_crates(limit).await
    }

    async fn most_downloaded(&self, limit: u32) -> StoreResult<Vec<crate::CrateSummary>> {
        self.inner.most_downloaded(limit).await
    }

    async fn search_summaries(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<crate::CrateSummary>, u64)> {
        self.inner.search_summaries(query, page, per_page).await
    }

    async fn totals(&self) -> StoreResult<crate::Totals> {
        self.inner.totals().await
    }

    async fn session_key(&self) -> StoreResult<Vec<u8>> {
        self.inner.session_key().await
    }
}
