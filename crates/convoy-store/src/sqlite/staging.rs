//! Staged releases in SQLite (`docs/STAGING.md`).
//!
//! A staged version is an ordinary version row with `state = 'staged'` and
//! its stage's id, so the unique `(crate_id, num_key)` constraint that keeps
//! published versions unique also makes staging reserve the slot. Commit
//! flips the rows to `published` and rewrites the affected index files in
//! the same transaction, then swaps them into the in-memory cache under one
//! lock.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Inner, db, find_crate, is_owner, now_secs, render_index_file};
use crate::rules::{self, StagedLine};
use crate::{
    AuthenticatedToken, Release, StageRecord, StagedCrate, StoreError, StoreResult, TokenSecret,
    UserId, hash_token,
};

use convoy_protocol::index::format_timestamp as rfc3339;

/// Discards every open stage past its expiry. Runs at the start of every
/// transaction that could be blocked by a stale reservation.
pub(super) fn expire_due(tx: &Transaction<'_>) -> StoreResult<usize> {
    let now = now_secs();
    let ids: Vec<String> = tx
        .prepare_cached("SELECT id FROM stages WHERE state = 'open' AND expires_at <= ?1")
        .map_err(db)?
        .query_map([now], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for id in &ids {
        discard(tx, id, "expired")?;
    }
    Ok(ids.len())
}

fn discard(tx: &Transaction<'_>, id: &str, state: &str) -> StoreResult<()> {
    tx.execute(
        "UPDATE versions SET state = 'aborted' WHERE stage_id = ?1 AND state = 'staged'",
        [id],
    )
    .map_err(db)?;
    tx.execute(
        "UPDATE stages SET state = ?2 WHERE id = ?1",
        params![id, state],
    )
    .map_err(db)?;
    Ok(())
}

/// Discards the open stages that token `token` opened.
pub(super) fn discard_opened_by(tx: &Transaction<'_>, token: &str) -> StoreResult<()> {
    let ids: Vec<String> = tx
        .prepare_cached("SELECT id FROM stages WHERE creator_token = ?1 AND state = 'open'")
        .map_err(db)?
        .query_map([token], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for id in &ids {
        discard(tx, id, "aborted")?;
    }
    Ok(())
}

/// Whether `name` has a version staged in stage `stage`.
pub(super) fn staged_in(conn: &Connection, stage: &str, name: &str) -> StoreResult<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM versions v JOIN crates c ON c.id = v.crate_id
         WHERE c.canonical = ?1 AND v.stage_id = ?2 AND v.state = 'staged'",
    )
    .map_err(db)?
    .exists(params![canonical_name(name), stage])
    .map_err(db)
}

/// Fails unless stage `id` exists and is open.
pub(super) fn require_open(conn: &Connection, id: &str) -> StoreResult<()> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM stages WHERE id = ?1")
        .map_err(db)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(db)?;
    match state.as_deref() {
        None => Err(StoreError::StageNotFound { id: id.to_owned() }),
        Some("open") => Ok(()),
        Some(other) => Err(StoreError::StageNotOpen {
            id: id.to_owned(),
            state: other.to_owned(),
        }),
    }
}

fn record(conn: &Connection, id: &str) -> StoreResult<Option<StageRecord>> {
    let row: Option<(i64, String, String, i64, i64)> = conn
        .prepare_cached(
            "SELECT s.user_id, u.login, s.state, s.created_at, s.expires_at
             FROM stages s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
        )
        .map_err(db)?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .map_err(db)?;
    let Some((user_id, login, state, created, expires)) = row else {
        return Ok(None);
    };
    Ok(Some(StageRecord {
        id: id.to_owned(),
        user_id,
        login,
        state: rules::parse_stage_state(&state),
        created_at: UNIX_EPOCH + Duration::from_secs(created.max(0) as u64),
        expires_at: UNIX_EPOCH + Duration::from_secs(expires.max(0) as u64),
        crates: stage_crates(conn, id, None)?,
    }))
}

fn stage_crates(conn: &Connection, id: &str, state: Option<&str>) -> StoreResult<Vec<StagedCrate>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.name, v.num, v.cksum, v.yanked, v.state FROM versions v
             JOIN crates c ON c.id = v.crate_id WHERE v.stage_id = ?1 ORDER BY v.id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                StagedCrate {
                    name: r.get(0)?,
                    vers: r.get(1)?,
                    cksum: r.get(2)?,
                    yanked: r.get(3)?,
                },
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (krate, row_state) = row.map_err(db)?;
        if state.is_none_or(|s| s == row_state) {
            out.push(krate);
        }
    }
    Ok(out)
}

fn release_of(conn: &Connection, id: &str) -> StoreResult<Option<Release>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT u.login, s.committed_at FROM stages s JOIN users u ON u.id = s.committed_by
             WHERE s.id = ?1 AND s.state = 'committed'",
        )
        .map_err(db)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?;
    let Some((committed_by, at)) = row else {
        return Ok(None);
    };
    Ok(Some(Release {
        id: id.to_owned(),
        committed_by,
        committed_at: rfc3339(at),
        crates: stage_crates(conn, id, Some("published"))?,
    }))
}

/// One staged row, as commit needs it.
struct StagedRow {
    id: i64,
    crate_id: i64,
    canonical: String,
    line: IndexPackage,
}

impl Inner {
    pub(super) fn create_stage(
        &self,
        creator: &AuthenticatedToken,
        ttl: Duration,
    ) -> StoreResult<(StageRecord, TokenSecret)> {
        let id = rules::new_stage_id();
        let token = TokenSecret::generate();
        // A stage token can only upload, and only what its creator could.
        let (scopes, crates) = rules::stage_token_grants(creator);
        let now = now_secs();
        let creator_expires = creator.expires_at.map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        let expires = rules::bounded_expiry(now, ttl, creator_expires);
        let hash = hash_token(token.expose());
        let record = self.write(
            |tx| {
                expire_due(tx)?;
                tx.execute(
                    "INSERT INTO stages (id, user_id, scopes, crates, state, created_at, expires_at, creator_token)
                     VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7)",
                    params![id, creator.user_id, scopes, crates, now, expires, creator.id],
                )
                .map_err(db)?;
                tx.execute(
                    "INSERT INTO tokens (id, user_id, name, hash, scopes, crates, expires_at, created_at, stage_id, parent_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![token.id(), creator.user_id, format!("stage {id}"), hash.as_slice(), scopes, crates, expires, now, id, creator.id],
                )
                .map_err(db)?;
                record(tx, &id)?.ok_or_else(|| StoreError::StageNotFound { id: id.clone() })
            },
            |_| {},
        )?;
        Ok((record, token))
    }

    pub(super) fn stage(&self, id: &str) -> StoreResult<Option<StageRecord>> {
        let due: bool = self.read(|conn| {
            conn.prepare_cached(
                "SELECT 1 FROM stages WHERE id = ?1 AND state = 'open' AND expires_at <= ?2",
            )
            .map_err(db)?
            .exists(params![id, now_secs()])
            .map_err(db)
        })?;
        if due {
            self.write(expire_due, |_| {})?;
        }
        self.read(|conn| record(conn, id))
    }

    pub(super) fn open_stages(&self, user: UserId) -> StoreResult<Vec<StageRecord>> {
        self.read(|conn| {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM stages WHERE user_id = ?1 AND state = 'open' AND expires_at > ?2
                     ORDER BY created_at",
                )
                .map_err(db)?
                .query_map(params![user, now_secs()], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let mut out = Vec::new();
            for id in ids {
                out.extend(record(conn, &id)?);
            }
            Ok(out)
        })
    }

    pub(super) fn extend_stage(&self, id: &str, ttl: Duration) -> StoreResult<StageRecord> {
        self.write(
            |tx| {
                expire_due(tx)?;
                require_open(tx, id)?;
                // Never past the expiry of the token that opened the stage,
                // whoever asks.
                let creator_expires: Option<i64> = tx
                    .query_row(
                        "SELECT t.expires_at FROM stages s JOIN tokens t ON t.id = s.creator_token
                         WHERE s.id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?
                    .flatten();
                let expires = rules::bounded_expiry(now_secs(), ttl, creator_expires);
                tx.execute(
                    "UPDATE stages SET expires_at = ?2 WHERE id = ?1",
                    params![id, expires],
                )
                .map_err(db)?;
                tx.execute(
                    "UPDATE tokens SET expires_at = ?2 WHERE stage_id = ?1",
                    params![id, expires],
                )
                .map_err(db)?;
                record(tx, id)?.ok_or_else(|| StoreError::StageNotFound { id: id.to_owned() })
            },
            |_| {},
        )
    }

    pub(super) fn abort_stage(&self, id: &str) -> StoreResult<StageRecord> {
        self.write(
            |tx| {
                expire_due(tx)?;
                require_open(tx, id)?;
                discard(tx, id, "aborted")?;
                record(tx, id)?.ok_or_else(|| StoreError::StageNotFound { id: id.to_owned() })
            },
            |_| {},
        )
    }

    pub(super) fn expire_stages(&self) -> StoreResult<usize> {
        self.write(expire_due, |_| {})
    }

    pub(super) fn commit_stage(&self, id: &str, actor: UserId) -> StoreResult<Release> {
        let delay = self.commit_delay;
        let (release, files) = self.write(
            |tx| {
                expire_due(tx)?;
                require_open(tx, id)?;
                let rows = staged_rows(tx, id)?;
                if rows.is_empty() {
                    return Err(StoreError::CommitRejected {
                        problems: vec!["nothing was uploaded into the stage".into()],
                    });
                }
                let problems = commit_problems(tx, id, actor, &rows)?;
                if !problems.is_empty() {
                    return Err(StoreError::CommitRejected { problems });
                }
                let now = now_secs();
                let pubtime = rfc3339(now);
                let mut touched = BTreeMap::new();
                for row in &rows {
                    let mut line = row.line.clone();
                    line.pubtime = Some(pubtime.clone());
                    let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
                    tx.execute(
                        "UPDATE versions SET state = 'published', line = ?2 WHERE id = ?1",
                        params![row.id, json],
                    )
                    .map_err(db)?;
                    // Search shows the description only now.
                    tx.execute(
                        "UPDATE crates SET description = (SELECT description FROM versions WHERE id = ?1)
                         WHERE id = ?2",
                        params![row.id, row.crate_id],
                    )
                    .map_err(db)?;
                    touched.insert(row.canonical.clone(), row.crate_id);
                }
                tx.execute(
                    "UPDATE stages SET state = 'committed', committed_at = ?2, committed_by = ?3 WHERE id = ?1",
                    params![id, now, actor],
                )
                .map_err(db)?;
                let mut files = Vec::new();
                for (canonical, crate_id) in touched {
                    files.push((canonical.clone(), render_index_file(tx, crate_id, &canonical)?));
                }
                // Fault injection for the crash tests: hold the transaction
                // open so a kill lands inside it.
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let release = release_of(tx, id)?
                    .ok_or_else(|| StoreError::ReleaseNotFound { id: id.to_owned() })?;
                Ok((release, files))
            },
            |(_, files)| self.swap_index_files(files.iter().cloned()),
        )?;
        drop(files);
        Ok(release)
    }

    pub(super) fn stage_index_file(
        &self,
        stage: &str,
        name: &str,
    ) -> StoreResult<Option<bytes::Bytes>> {
        self.read(|conn| {
            let Some(krate) = find_crate(conn, name)? else {
                return Ok(None);
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT line FROM versions WHERE crate_id = ?1
                     AND (state = 'published' OR (state = 'staged' AND stage_id = ?2)) ORDER BY id",
                )
                .map_err(db)?;
            let mut content = Vec::new();
            for line in stmt
                .query_map(params![krate.id, stage], |r| r.get::<_, String>(0))
                .map_err(db)?
            {
                content.extend_from_slice(line.map_err(db)?.as_bytes());
                content.push(b'\n');
            }
            Ok((!content.is_empty()).then(|| bytes::Bytes::from(content)))
        })
    }

    pub(super) fn stage_download(
        &self,
        stage: &str,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT v.cksum FROM versions v JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = ?1 AND v.num = ?2
                 AND (v.state = 'published' OR (v.state = 'staged' AND v.stage_id = ?3))",
            )
            .map_err(db)?
            .query_row(params![canonical_name(name), version, stage], |r| r.get(0))
            .optional()
            .map_err(db)
        })
    }

    pub(super) fn release(&self, id: &str) -> StoreResult<Option<Release>> {
        self.read(|conn| release_of(conn, id))
    }

    pub(super) fn yank_release(
        &self,
        id: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<Release> {
        let (release, files) = self.write(
            |tx| {
                if release_of(tx, id)?.is_none() {
                    return Err(StoreError::ReleaseNotFound { id: id.to_owned() });
                }
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT v.id, v.crate_id, c.name, c.canonical, v.line FROM versions v
                         JOIN crates c ON c.id = v.crate_id
                         WHERE v.stage_id = ?1 AND v.state = 'published'",
                    )
                    .map_err(db)?;
                let rows: Vec<(i64, i64, String, String, String)> = stmt
                    .query_map([id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(db)?
                    .collect::<Result<_, _>>()
                    .map_err(db)?;
                drop(stmt);
                let mut touched = BTreeMap::new();
                for (row, crate_id, name, canonical, line) in rows {
                    if !is_owner(tx, crate_id, actor)? {
                        return Err(StoreError::NotOwner { name });
                    }
                    let mut line: IndexPackage =
                        serde_json::from_str(&line).map_err(StoreError::backend)?;
                    line.yanked = yanked;
                    let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
                    tx.execute(
                        "UPDATE versions SET yanked = ?2, line = ?3 WHERE id = ?1",
                        params![row, yanked, json],
                    )
                    .map_err(db)?;
                    touched.insert(canonical, crate_id);
                }
                let mut files = Vec::new();
                for (canonical, crate_id) in touched {
                    files.push((
                        canonical.clone(),
                        render_index_file(tx, crate_id, &canonical)?,
                    ));
                }
                let release = release_of(tx, id)?
                    .ok_or_else(|| StoreError::ReleaseNotFound { id: id.to_owned() })?;
                Ok((release, files))
            },
            |(_, files)| self.swap_index_files(files.iter().cloned()),
        )?;
        drop(files);
        Ok(release)
    }
}

fn staged_rows(tx: &Transaction<'_>, id: &str) -> StoreResult<Vec<StagedRow>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT v.id, v.crate_id, c.canonical, v.line FROM versions v
             JOIN crates c ON c.id = v.crate_id
             WHERE v.stage_id = ?1 AND v.state = 'staged' ORDER BY v.id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, crate_id, canonical, line) = row.map_err(db)?;
        let line: IndexPackage = serde_json::from_str(&line).map_err(StoreError::backend)?;
        out.push(StagedRow {
            id,
            crate_id,
            canonical,
            line,
        });
    }
    Ok(out)
}

/// Everything that would make the commit wrong (see
/// [`rules::commit_problems`]), judged on facts read in `tx`.
fn commit_problems(
    tx: &Transaction<'_>,
    id: &str,
    actor: UserId,
    rows: &[StagedRow],
) -> StoreResult<Vec<String>> {
    let globs: String = tx
        .query_row("SELECT crates FROM stages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .map_err(db)?;
    let globs = rules::parse_globs(&globs);
    let lines: Vec<StagedLine> = rows
        .iter()
        .map(|r| StagedLine {
            crate_id: r.crate_id,
            line: r.line.clone(),
        })
        .collect();
    let mut owned = std::collections::HashMap::new();
    for row in rows {
        if let std::collections::hash_map::Entry::Vacant(e) = owned.entry(row.crate_id) {
            e.insert(is_owner(tx, row.crate_id, actor)?);
        }
    }
    let mut visible = std::collections::HashMap::new();
    for name in rules::commit_dependency_names(&lines) {
        let versions = match find_crate(tx, &name)? {
            None => None,
            Some(krate) => Some(
                tx.prepare_cached(
                    "SELECT num FROM versions WHERE crate_id = ?1
                     AND ((state = 'published' AND yanked = 0) OR (state = 'staged' AND stage_id = ?2))",
                )
                .map_err(db)?
                .query_map(params![krate.id, id], |r| r.get::<_, String>(0))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?,
            ),
        };
        visible.insert(name, versions);
    }
    Ok(rules::commit_problems(
        &lines,
        &globs,
        |crate_id| owned.get(&crate_id).copied().unwrap_or(false),
        |name| visible.get(name).cloned().flatten(),
    ))
}
