//! The PostgreSQL schema, as numbered migrations embedded in the binary.
//!
//! Every node runs them at start. They run under a session-level advisory
//! lock, so when several nodes start at once one migrates and the others
//! wait and then find nothing left to do.

use deadpool_postgres::Pool;

use super::pg;
use crate::{StoreError, StoreResult};

/// The key of the advisory lock that serializes migrations (any constant
/// that nothing else uses: "convoy" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6e76_6f79;

/// Migration `n` is `MIGRATIONS[n - 1]`. Append only: a shipped migration
/// never changes.
const MIGRATIONS: &[&str] = &[
    // 1: the same model as the embedded backend (see `sqlite.rs`): versions
    // are `published`, `staged` (in an open stage, invisible) or `aborted`,
    // and rendered index files are stored next to the rows they come from.
    // Stage tokens name the token that opened their stage (`parent_id`) and
    // die with it; a staged version keeps its own description until its
    // stage commits.
    "
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE stages (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    crates TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    committed_at BIGINT,
    committed_by BIGINT REFERENCES users(id),
    creator_token TEXT
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    hash BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    crates TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    stage_id TEXT REFERENCES stages(id),
    parent_id TEXT,
    last_used_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE INDEX tokens_parent ON tokens(parent_id);
CREATE TABLE crates (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    canonical TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE versions (
    id BIGSERIAL PRIMARY KEY,
    crate_id BIGINT NOT NULL REFERENCES crates(id),
    num TEXT NOT NULL,
    num_key TEXT NOT NULL,
    cksum TEXT NOT NULL,
    yanked BOOLEAN NOT NULL DEFAULT FALSE,
    line TEXT NOT NULL,
    published_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'published',
    stage_id TEXT REFERENCES stages(id),
    description TEXT,
    UNIQUE (crate_id, num_key)
);
CREATE INDEX versions_stage ON versions(stage_id);
CREATE INDEX versions_num ON versions(crate_id, num);
CREATE TABLE owners (
    crate_id BIGINT NOT NULL REFERENCES crates(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (crate_id, user_id)
);
CREATE TABLE index_files (
    crate_id BIGINT PRIMARY KEY REFERENCES crates(id),
    canonical TEXT NOT NULL UNIQUE,
    content BYTEA NOT NULL,
    etag TEXT NOT NULL,
    modified_ms BIGINT NOT NULL
);
CREATE TABLE companions (
    crate_id BIGINT PRIMARY KEY REFERENCES crates(id),
    parent TEXT NOT NULL,
    parent_name TEXT NOT NULL
);
CREATE INDEX companions_parent ON companions(parent);
CREATE TABLE version_meta (
    version_id BIGINT PRIMARY KEY REFERENCES versions(id),
    readme TEXT,
    readme_file TEXT,
    license TEXT,
    repository TEXT,
    homepage TEXT,
    documentation TEXT,
    keywords TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    authors TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE version_deps (
    version_id BIGINT NOT NULL REFERENCES versions(id),
    canonical TEXT NOT NULL,
    req TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX version_deps_target ON version_deps(canonical);
CREATE INDEX version_deps_version ON version_deps(version_id);
CREATE TABLE daily_downloads (
    version_id BIGINT NOT NULL REFERENCES versions(id),
    day BIGINT NOT NULL,
    downloads BIGINT NOT NULL,
    PRIMARY KEY (version_id, day)
);
CREATE TABLE web_settings (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE rate_buckets (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    tokens DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL
);
",
];

/// Brings the database to the newest schema this build knows, and refuses
/// a database that a newer Convoy has migrated further.
pub(super) async fn migrate(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(StoreError::backend)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS convoy_schema (version INTEGER NOT NULL);
                 INSERT INTO convoy_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM convoy_schema);",
            )
            .await
            .map_err(pg)?;
        let current: i32 = client
            .query_one("SELECT version FROM convoy_schema", &[])
            .await
            .map_err(pg)?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if current > known {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "database schema version {current} is newer than this Convoy understands ({known})"
            ))));
        }
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = client.transaction().await.map_err(pg)?;
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute("UPDATE convoy_schema SET version = $1", &[&(n as i32 + 1)])
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
        }
        Ok(())
    }
    .await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg);
    result.and(unlocked.map(drop))
}
