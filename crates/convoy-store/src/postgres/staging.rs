//! Staged releases in PostgreSQL (`docs/STAGING.md`), with the same rows
//! and states as the embedded backend.
//!
//! Lock order, so that no two transactions wait on each other in a cycle:
//! crate locks (in name order) first, then the stage's row.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use convoy_protocol::index::IndexPackage;
use convoy_protocol::index::format_timestamp as rfc3339;
use convoy_protocol::name::canonical_name;
use deadpool_postgres::{GenericClient, Transaction};

use super::{Inner, find_crate, is_owner, lock_crates, pg, render_index_file};
use crate::rules::{self, StagedLine, now_secs};
use crate::{
    AuthenticatedToken, Release, StageRecord, StagedCrate, StoreError, StoreResult, TokenSecret,
    UserId, hash_token,
};

/// Discards stage `id`: its staged versions become `aborted`.
async fn discard(tx: &Transaction<'_>, id: &str, state: &str) -> StoreResult<()> {
    tx.execute(
        "UPDATE versions SET state = 'aborted' WHERE stage_id = $1 AND state = 'staged'",
        &[&id],
    )
    .await
    .map_err(pg)?;
    tx.execute("UPDATE stages SET state = $2 WHERE id = $1", &[&id, &state])
        .await
        .map_err(pg)?;
    Ok(())
}

/// Discards the open stages that token `token` opened.
pub(super) async fn discard_opened_by(tx: &Transaction<'_>, token: &str) -> StoreResult<()> {
    let ids: Vec<String> = tx
        .query(
            "SELECT id FROM stages WHERE creator_token = $1 AND state = 'open' FOR UPDATE",
            &[&token],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &ids {
        discard(tx, id, "aborted").await?;
    }
    Ok(())
}

/// Locks stage `id`'s row (exclusively, or shared for an upload into it)
/// and fails unless it is open; a stage found past its expiry is expired
/// on the spot (only under the exclusive lock).
pub(super) async fn lock_open(tx: &Transaction<'_>, id: &str, exclusive: bool) -> StoreResult<()> {
    let sql = if exclusive {
        "SELECT state, expires_at FROM stages WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT state, expires_at FROM stages WHERE id = $1 FOR SHARE"
    };
    let Some(row) = tx.query_opt(sql, &[&id]).await.map_err(pg)? else {
        return Err(StoreError::StageNotFound { id: id.to_owned() });
    };
    let (state, expires): (String, i64) = (row.get(0), row.get(1));
    let state = if state == "open" && expires <= now_secs() {
        if exclusive {
            discard(tx, id, "expired").await?;
        }
        "expired".to_owned()
    } else {
        state
    };
    if state == "open" {
        Ok(())
    } else {
        Err(StoreError::StageNotOpen {
            id: id.to_owned(),
            state,
        })
    }
}

async fn record(c: &impl GenericClient, id: &str) -> StoreResult<Option<StageRecord>> {
    let Some(row) = c
        .query_opt(
            "SELECT s.user_id, u.login, s.state, s.created_at, s.expires_at
             FROM stages s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
            &[&id],
        )
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let state: String = row.get(2);
    Ok(Some(StageRecord {
        id: id.to_owned(),
        user_id: row.get(0),
        login: row.get(1),
        state: rules::parse_stage_state(&state),
        created_at: rules::from_secs(row.get(3)),
        expires_at: rules::from_secs(row.get(4)),
        crates: stage_crates(c, id, None).await?,
    }))
}

async fn stage_crates(
    c: &impl GenericClient,
    id: &str,
    state: Option<&str>,
) -> StoreResult<Vec<StagedCrate>> {
    let rows = c
        .query(
            "SELECT c.name, v.num, v.cksum, v.yanked, v.state FROM versions v
             JOIN crates c ON c.id = v.crate_id WHERE v.stage_id = $1 ORDER BY v.id",
            &[&id],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .filter(|r| state.is_none_or(|s| r.get::<_, &str>(4) == s))
        .map(|r| StagedCrate {
            name: r.get(0),
            vers: r.get(1),
            cksum: r.get(2),
            yanked: r.get(3),
        })
        .collect())
}

async fn release_of(c: &impl GenericClient, id: &str) -> StoreResult<Option<Release>> {
    let Some(row) = c
        .query_opt(
            "SELECT u.login, s.committed_at FROM stages s JOIN users u ON u.id = s.committed_by
             WHERE s.id = $1 AND s.state = 'committed'",
            &[&id],
        )
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    Ok(Some(Release {
        id: id.to_owned(),
        committed_by: row.get(0),
        committed_at: rfc3339(row.get(1)),
        crates: stage_crates(c, id, Some("published")).await?,
    }))
}

/// One staged row, as commit needs it.
struct StagedRow {
    id: i64,
    canonical: String,
    staged: StagedLine,
}

async fn staged_rows(c: &impl GenericClient, id: &str) -> StoreResult<Vec<StagedRow>> {
    let rows = c
        .query(
            "SELECT v.id, v.crate_id, c.canonical, v.line FROM versions v
             JOIN crates c ON c.id = v.crate_id
             WHERE v.stage_id = $1 AND v.state = 'staged' ORDER BY v.id",
            &[&id],
        )
        .await
        .map_err(pg)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let line: String = r.get(3);
        let line: IndexPackage = serde_json::from_str(&line).map_err(StoreError::backend)?;
        out.push(StagedRow {
            id: r.get(0),
            canonical: r.get(2),
            staged: StagedLine {
                crate_id: r.get(1),
                line,
            },
        });
    }
    Ok(out)
}

/// How often a commit re-locks when uploads into its stage landed while it
/// was taking its crate locks.
const COMMIT_ATTEMPTS: usize = 5;

impl Inner {
    pub(super) async fn create_stage(
        &self,
        creator: &AuthenticatedToken,
        ttl: Duration,
    ) -> StoreResult<(StageRecord, TokenSecret)> {
        let id = rules::new_stage_id();
        let token = TokenSecret::generate();
        let (scopes, crates) = rules::stage_token_grants(creator);
        let now = now_secs();
        let expires = rules::bounded_expiry(now, ttl, creator.expires_at.map(rules::to_secs));
        let hash = hash_token(token.expose());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO stages (id, user_id, scopes, crates, state, created_at, expires_at,
             creator_token) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7)",
            &[
                &id,
                &creator.user_id,
                &scopes,
                &crates,
                &now,
                &expires,
                &creator.id,
            ],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "INSERT INTO tokens (id, user_id, name, hash, scopes, crates, expires_at, created_at,
             stage_id, parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &token.id(),
                &creator.user_id,
                &format!("stage {id}"),
                &hash.as_slice(),
                &scopes,
                &crates,
                &expires,
                &now,
                &id,
                &creator.id,
            ],
        )
        .await
        .map_err(pg)?;
        let record = record(&tx, &id)
            .await?
            .ok_or_else(|| StoreError::StageNotFound { id: id.clone() })?;
        tx.commit().await.map_err(pg)?;
        Ok((record, token))
    }

    pub(super) async fn stage(&self, id: &str) -> StoreResult<Option<StageRecord>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        match lock_open(&tx, id, true).await {
            Ok(()) | Err(StoreError::StageNotOpen { .. }) => {}
            Err(StoreError::StageNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let record = record(&tx, id).await?;
        tx.commit().await.map_err(pg)?;
        Ok(record)
    }

    pub(super) async fn open_stages(&self, user: UserId) -> StoreResult<Vec<StageRecord>> {
        let client = self.client().await?;
        let ids: Vec<String> = client
            .query(
                "SELECT id FROM stages WHERE user_id = $1 AND state = 'open' AND expires_at > $2
                 ORDER BY created_at, id",
                &[&user, &now_secs()],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(record(&client, &id).await?);
        }
        Ok(out)
    }

    pub(super) async fn extend_stage(&self, id: &str, ttl: Duration) -> StoreResult<StageRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock_open(&tx, id, true).await?;
        // Never past the expiry of the token that opened the stage, whoever
        // asks.
        let creator_expires: Option<i64> = tx
            .query_opt(
                "SELECT t.expires_at FROM stages s JOIN tokens t ON t.id = s.creator_token
                 WHERE s.id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?
            .and_then(|r| r.get(0));
        let expires = rules::bounded_expiry(now_secs(), ttl, creator_expires);
        tx.execute(
            "UPDATE stages SET expires_at = $2 WHERE id = $1",
            &[&id, &expires],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "UPDATE tokens SET expires_at = $2 WHERE stage_id = $1",
            &[&id, &expires],
        )
        .await
        .map_err(pg)?;
        let record = record(&tx, id)
            .await?
            .ok_or_else(|| StoreError::StageNotFound { id: id.to_owned() })?;
        tx.commit().await.map_err(pg)?;
        Ok(record)
    }

    pub(super) async fn abort_stage(&self, id: &str) -> StoreResult<StageRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock_open(&tx, id, true).await?;
        discard(&tx, id, "aborted").await?;
        let record = record(&tx, id)
            .await?
            .ok_or_else(|| StoreError::StageNotFound { id: id.to_owned() })?;
        tx.commit().await.map_err(pg)?;
        Ok(record)
    }

    pub(super) async fn expire_stages(&self) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // `SKIP LOCKED`: a stage another transaction holds is being
        // committed, aborted or extended right now; the next round gets it.
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM stages WHERE state = 'open' AND expires_at <= $1
                 FOR UPDATE SKIP LOCKED",
                &[&now_secs()],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in &ids {
            discard(&tx, id, "expired").await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(ids.len())
    }

    pub(super) async fn commit_stage(&self, id: &str, actor: UserId) -> StoreResult<Release> {
        let mut locked: Vec<String> = {
            let client = self.client().await?;
            staged_rows(&client, id)
                .await?
                .into_iter()
                .map(|r| r.canonical)
                .collect()
        };
        for _ in 0..COMMIT_ATTEMPTS {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            lock_crates(&tx, locked.iter().map(String::as_str)).await?;
            lock_open(&tx, id, true).await?;
            let rows = staged_rows(&tx, id).await?;
            let missing: Vec<String> = rows
                .iter()
                .filter(|r| !locked.contains(&r.canonical))
                .map(|r| r.canonical.clone())
                .collect();
            if !missing.is_empty() {
                // An upload landed between reading and locking: take its
                // crate's lock too, from the start.
                drop(tx);
                locked.extend(missing);
                continue;
            }
            let release = self.commit_locked(&tx, id, actor, rows).await?;
            tx.commit().await.map_err(pg)?;
            return Ok(release);
        }
        Err(StoreError::backend(std::io::Error::other(format!(
            "staged release `{id}` kept changing while it was being committed"
        ))))
    }

    async fn commit_locked(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        actor: UserId,
        rows: Vec<StagedRow>,
    ) -> StoreResult<Release> {
        let globs: String = tx
            .query_one("SELECT crates FROM stages WHERE id = $1", &[&id])
            .await
            .map_err(pg)?
            .get(0);
        let globs = rules::parse_globs(&globs);
        let lines: Vec<StagedLine> = rows.iter().map(|r| r.staged.clone()).collect();
        let mut owned = HashMap::new();
        for row in &rows {
            let crate_id = row.staged.crate_id;
            if let std::collections::hash_map::Entry::Vacant(e) = owned.entry(crate_id) {
                e.insert(is_owner(tx, crate_id, actor).await?);
            }
        }
        let mut visible: HashMap<String, Option<Vec<String>>> = HashMap::new();
        for name in rules::commit_dependency_names(&lines) {
            let versions = match find_crate(tx, &name).await? {
                None => None,
                Some(krate) => Some(
                    tx.query(
                        "SELECT num FROM versions WHERE crate_id = $1
                         AND ((state = 'published' AND NOT yanked)
                              OR (state = 'staged' AND stage_id = $2))",
                        &[&krate.id, &id],
                    )
                    .await
                    .map_err(pg)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
                ),
            };
            visible.insert(name, versions);
        }
        let problems = rules::commit_problems(
            &lines,
            &globs,
            |crate_id| owned.get(&crate_id).copied().unwrap_or(false),
            |name| visible.get(name).cloned().flatten(),
        );
        if !problems.is_empty() {
            return Err(StoreError::CommitRejected { problems });
        }
        let now = now_secs();
        let pubtime = rfc3339(now);
        let mut touched = BTreeMap::new();
        for row in &rows {
            let mut line = row.staged.line.clone();
            line.pubtime = Some(pubtime.clone());
            let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
            tx.execute(
                "UPDATE versions SET state = 'published', line = $2 WHERE id = $1",
                &[&row.id, &json],
            )
            .await
            .map_err(pg)?;
            // Search shows the description only now.
            tx.execute(
                "UPDATE crates SET description = (SELECT description FROM versions WHERE id = $1)
                 WHERE id = $2",
                &[&row.id, &row.staged.crate_id],
            )
            .await
            .map_err(pg)?;
            touched.insert(row.canonical.clone(), row.staged.crate_id);
        }
        tx.execute(
            "UPDATE stages SET state = 'committed', committed_at = $2, committed_by = $3 WHERE id = $1",
            &[&id, &now, &actor],
        )
        .await
        .map_err(pg)?;
        for (canonical, crate_id) in touched {
            render_index_file(tx, crate_id, &canonical).await?;
        }
        if !self.commit_delay.is_zero() {
            // Fault injection for the crash tests: hold the transaction
            // open so a kill lands inside it.
            tokio::time::sleep(self.commit_delay).await;
        }
        release_of(tx, id)
            .await?
            .ok_or_else(|| StoreError::ReleaseNotFound { id: id.to_owned() })
    }

    pub(super) async fn stage_index_file(
        &self,
        stage: &str,
        name: &str,
    ) -> StoreResult<Option<Bytes>> {
        let client = self.client().await?;
        let Some(krate) = find_crate(&client, name).await? else {
            return Ok(None);
        };
        let lines: Vec<String> = client
            .query(
                "SELECT line FROM versions WHERE crate_id = $1
                 AND (state = 'published' OR (state = 'staged' AND stage_id = $2)) ORDER BY id",
                &[&krate.id, &stage],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(
            rules::render_index(lines.iter().map(String::as_str), std::time::UNIX_EPOCH)
                .map(|f| f.content),
        )
    }

    pub(super) async fn stage_download(
        &self,
        stage: &str,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<String>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT v.cksum FROM versions v JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = $1 AND v.num = $2
                 AND (v.state = 'published' OR (v.state = 'staged' AND v.stage_id = $3))",
                &[&canonical_name(name), &version, &stage],
            )
            .await
            .map_err(pg)?
            .map(|r| r.get(0)))
    }

    pub(super) async fn release(&self, id: &str) -> StoreResult<Option<Release>> {
        let client = self.client().await?;
        release_of(&client, id).await
    }

    pub(super) async fn yank_release(
        &self,
        id: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<Release> {
        let query = "SELECT v.id, v.crate_id, c.name, c.canonical, v.line FROM versions v
                     JOIN crates c ON c.id = v.crate_id
                     WHERE v.stage_id = $1 AND v.state = 'published'";
        let mut client = self.client().await?;
        let canonicals: Vec<String> = client
            .query(query, &[&id])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(3))
            .collect();
        let tx = client.transaction().await.map_err(pg)?;
        // A committed release's versions never change stage, so the set read
        // before locking is the set after.
        lock_crates(&tx, canonicals.iter().map(String::as_str)).await?;
        if release_of(&tx, id).await?.is_none() {
            return Err(StoreError::ReleaseNotFound { id: id.to_owned() });
        }
        let rows = tx.query(query, &[&id]).await.map_err(pg)?;
        let mut touched = BTreeMap::new();
        for r in rows {
            let (row, crate_id, name, canonical, line): (i64, i64, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            if !is_owner(&tx, crate_id, actor).await? {
                return Err(StoreError::NotOwner { name });
            }
            let mut line: IndexPackage =
                serde_json::from_str(&line).map_err(StoreError::backend)?;
            line.yanked = yanked;
            let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
            tx.execute(
                "UPDATE versions SET yanked = $2, line = $3 WHERE id = $1",
                &[&row, &yanked, &json],
            )
            .await
            .map_err(pg)?;
            touched.insert(canonical, crate_id);
        }
        for (canonical, crate_id) in touched {
            render_index_file(&tx, crate_id, &canonical).await?;
        }
        let release = release_of(&tx, id)
            .await?
            .ok_or_else(|| StoreError::ReleaseNotFound { id: id.to_owned() })?;
        tx.commit().await.map_err(pg)?;
        Ok(release)
    }
}
