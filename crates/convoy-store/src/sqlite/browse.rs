//! Browsing, for the web UI: manifest metadata, dependency edges and daily
//! download counts recorded beside the version rows, and the read-only
//! queries the pages need.
//!
//! Every query joins `versions` with `state = 'published'`, so staged,
//! aborted and expired versions never reach a page.

use std::collections::{BTreeMap, HashMap};

use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::companions::NOT_A_COMPANION;
use super::{Inner, db, find_crate, max_version};
use crate::rules::{json_list, kind_str, parse_kind, parse_list, today};
use crate::{
    CrateDetails, CrateSummary, Dependent, NewVersion, StoreError, StoreResult, Totals,
    VersionDetails, VersionMeta,
};

/// The tables of this module. Every statement is idempotent, so the step
/// runs at every open and needs no schema version of its own; versions
/// published before it existed get their dependency edges backfilled from
/// their index lines.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS version_meta (
    version_id INTEGER PRIMARY KEY REFERENCES versions(id),
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
CREATE TABLE IF NOT EXISTS version_deps (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    canonical TEXT NOT NULL,
    req TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS version_deps_target ON version_deps(canonical);
CREATE INDEX IF NOT EXISTS version_deps_version ON version_deps(version_id);
CREATE TABLE IF NOT EXISTS daily_downloads (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    day INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    PRIMARY KEY (version_id, day)
);
CREATE TABLE IF NOT EXISTS web_settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// Creates the tables if needed and backfills dependency edges.
pub(super) fn migrate(conn: &Connection) -> StoreResult<()> {
    let existed: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'version_deps'")
        .map_err(db)?
        .exists([])
        .map_err(db)?;
    conn.execute_batch(SCHEMA).map_err(db)?;
    if existed {
        return Ok(());
    }
    let lines: Vec<(i64, String)> = conn
        .prepare("SELECT id, line FROM versions")
        .map_err(db)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (id, line) in lines {
        if let Ok(line) = serde_json::from_str::<IndexPackage>(&line) {
            insert_deps(conn, id, &line)?;
        }
    }
    Ok(())
}

fn insert_deps(conn: &Connection, version_id: i64, line: &IndexPackage) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM version_deps WHERE version_id = ?1",
        [version_id],
    )
    .map_err(db)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO version_deps (version_id, canonical, req, kind) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db)?;
    // Only edges into this registry: a crates.io dependency has no page here.
    for dep in line.deps.iter().filter(|d| d.registry.is_none()) {
        let real = dep.package.as_deref().unwrap_or(&dep.name);
        stmt.execute(params![
            version_id,
            canonical_name(real),
            dep.req,
            kind_str(dep.kind)
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// Records what the pages show of a version being published or staged, in
/// the publish transaction.
pub(super) fn record_version(
    tx: &Transaction<'_>,
    version_id: i64,
    new: &NewVersion,
) -> StoreResult<()> {
    let m = &new.meta;
    tx.execute(
        "INSERT OR REPLACE INTO version_meta
         (version_id, readme, readme_file, license, repository, homepage, documentation,
          keywords, categories, authors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            version_id,
            m.readme,
            m.readme_file,
            m.license,
            m.repository,
            m.homepage,
            m.documentation,
            json_list(&m.keywords)?,
            json_list(&m.categories)?,
            json_list(&m.authors)?,
        ],
    )
    .map_err(db)?;
    insert_deps(tx, version_id, &new.line)
}

/// Adds flushed download counts to today's row of each version.
pub(super) fn record_daily(tx: &Transaction<'_>, counts: &HashMap<i64, u64>) -> StoreResult<()> {
    let day = today();
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO daily_downloads (version_id, day, downloads) VALUES (?1, ?2, ?3)
             ON CONFLICT (version_id, day) DO UPDATE SET downloads = downloads + ?3",
        )
        .map_err(db)?;
    for (id, n) in counts {
        stmt.execute(params![id, day, *n as i64]).map_err(db)?;
    }
    Ok(())
}

/// A summary row from `(id, name, description)`.
fn summary(
    conn: &Connection,
    id: i64,
    name: String,
    description: Option<String>,
) -> StoreResult<CrateSummary> {
    let (downloads, updated_at): (i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(downloads), 0), COALESCE(MAX(created_at), 0) FROM versions
             WHERE crate_id = ?1 AND state = 'published'",
        )
        .map_err(db)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?;
    Ok(CrateSummary {
        max_version: max_version(conn, id)?,
        name,
        description,
        downloads: downloads.max(0) as u64,
        updated_at,
    })
}

/// Summaries of the crates a query returns as `(id, name, description)`
/// rows.
fn summaries(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<CrateSummary>> {
    let rows: Vec<(i64, String, Option<String>)> = conn
        .prepare_cached(sql)
        .map_err(db)?
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    rows.into_iter()
        .map(|(id, name, description)| summary(conn, id, name, description))
        .collect()
}

impl Inner {
    pub(super) fn crate_details(&self, name: &str) -> StoreResult<Option<CrateDetails>> {
        self.read(|conn| {
            let Some(krate) = find_crate(conn, name)? else {
                return Ok(None);
            };
            type Row = (String, i64, i64, String, Option<String>);
            let rows: Vec<Row> = conn
                .prepare_cached(
                    "SELECT v.line, v.created_at, v.downloads, u.login, v.stage_id
                     FROM versions v JOIN users u ON u.id = v.published_by
                     WHERE v.crate_id = ?1 AND v.state = 'published' ORDER BY v.id",
                )
                .map_err(db)?
                .query_map([krate.id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut versions = Vec::with_capacity(rows.len());
            for (line, created_at, downloads, published_by, release) in rows {
                versions.push(VersionDetails {
                    line: serde_json::from_str(&line).map_err(StoreError::backend)?,
                    created_at,
                    downloads: downloads.max(0) as u64,
                    published_by,
                    release,
                });
            }
            let description: Option<String> = conn
                .prepare_cached("SELECT description FROM crates WHERE id = ?1")
                .map_err(db)?
                .query_row([krate.id], |r| r.get(0))
                .map_err(db)?;
            let owners: Vec<String> = conn
                .prepare_cached(
                    "SELECT u.login FROM owners o JOIN users u ON u.id = o.user_id
                     WHERE o.crate_id = ?1 ORDER BY u.login",
                )
                .map_err(db)?
                .query_map([krate.id], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            Ok(Some(CrateDetails {
                name: krate.name,
                description,
                owners,
                versions,
            }))
        })
    }

    pub(super) fn version_meta(
        &self,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<VersionMeta>> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
        );
        let row: Option<Row> = self.read(|conn| {
            conn.prepare_cached(
                "SELECT m.readme, m.readme_file, m.license, m.repository, m.homepage,
                        m.documentation, m.keywords, m.categories, m.authors
                 FROM version_meta m JOIN versions v ON v.id = m.version_id
                 JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = ?1 AND v.num = ?2 AND v.state = 'published'",
            )
            .map_err(db)?
            .query_row(params![canonical_name(name), version], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .optional()
            .map_err(db)
        })?;
        Ok(row.map(
            |(
                readme,
                readme_file,
                license,
                repository,
                homepage,
                documentation,
                keywords,
                categories,
                authors,
            )| VersionMeta {
                readme,
                readme_file,
                license,
                repository,
                homepage,
                documentation,
                keywords: parse_list(&keywords),
                categories: parse_list(&categories),
                authors: parse_list(&authors),
            },
        ))
    }

    pub(super) fn reverse_dependencies(&self, name: &str) -> StoreResult<Vec<Dependent>> {
        let canonical = canonical_name(name);
        let rows: Vec<(String, String, String, String)> = self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT c.name, v.num, d.req, d.kind FROM version_deps d
                 JOIN versions v ON v.id = d.version_id
                 JOIN crates c ON c.id = v.crate_id
                 WHERE d.canonical = ?1 AND c.canonical != ?1
                   AND v.state = 'published' AND v.yanked = 0 AND {NOT_A_COMPANION}"
            ))
            .map_err(db)?
            .query_map([&canonical], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)
        })?;
        // The highest depending version of each crate speaks for it.
        let mut best: BTreeMap<String, (semver::Version, Dependent)> = BTreeMap::new();
        for (name, num, req, kind) in rows {
            let Ok(parsed) = semver::Version::parse(&num) else {
                continue;
            };
            let newer = best.get(&name).is_none_or(|(v, _)| parsed > *v);
            if newer {
                let dependent = Dependent {
                    name: name.clone(),
                    version: num,
                    req,
                    kind: parse_kind(&kind),
                };
                best.insert(name, (parsed, dependent));
            }
        }
        Ok(best.into_values().map(|(_, d)| d).collect())
    }

    pub(super) fn daily_downloads(&self, name: &str, days: u32) -> StoreResult<Vec<(i64, u64)>> {
        let since = today() - i64::from(days.saturating_sub(1));
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT d.day, SUM(d.downloads) FROM daily_downloads d
                 JOIN versions v ON v.id = d.version_id
                 JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = ?1 AND v.state = 'published' AND d.day >= ?2
                 GROUP BY d.day ORDER BY d.day",
            )
            .map_err(db)?
            .query_map(params![canonical_name(name), since], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)
        })
    }

    pub(super) fn user_crates(&self, login: &str) -> StoreResult<Option<Vec<CrateSummary>>> {
        self.read(|conn| {
            if super::user_id(conn, login)?.is_none() {
                return Ok(None);
            }
            summaries(
                conn,
                &format!(
                    "SELECT c.id, c.name, c.description FROM crates c
                 JOIN owners o ON o.crate_id = c.id JOIN users u ON u.id = o.user_id
                 WHERE u.login = ?1 AND {NOT_A_COMPANION} AND EXISTS
                   (SELECT 1 FROM versions v WHERE v.crate_id = c.id AND v.state = 'published')
                 ORDER BY c.canonical"
                ),
                [login],
            )
            .map(Some)
        })
    }

    pub(super) fn recent_crates(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        self.read(|conn| {
            summaries(
                conn,
                &format!(
                    "SELECT c.id, c.name, c.description FROM crates c
                 JOIN versions v ON v.crate_id = c.id AND v.state = 'published'
                 WHERE {NOT_A_COMPANION}
                 GROUP BY c.id ORDER BY MAX(v.created_at) DESC, MAX(v.id) DESC LIMIT ?1"
                ),
                [limit],
            )
        })
    }

    pub(super) fn most_downloaded(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        self.read(|conn| {
            summaries(
                conn,
                &format!(
                    "SELECT c.id, c.name, c.description FROM crates c
                 JOIN versions v ON v.crate_id = c.id AND v.state = 'published'
                 WHERE {NOT_A_COMPANION}
                 GROUP BY c.id ORDER BY SUM(v.downloads) DESC, c.canonical LIMIT ?1"
                ),
                [limit],
            )
        })
    }

    pub(super) fn search_summaries(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<CrateSummary>, u64)> {
        // The search rules live in `Inner::search`; this only adds figures.
        let (hits, total) = self.search(query, page, per_page)?;
        let list = self.read(|conn| {
            let mut list = Vec::with_capacity(hits.len());
            for hit in hits {
                if let Some(krate) = find_crate(conn, &hit.name)? {
                    list.push(summary(conn, krate.id, hit.name, hit.description)?);
                }
            }
            Ok(list)
        })?;
        Ok((list, total))
    }

    pub(super) fn totals(&self) -> StoreResult<Totals> {
        self.read(|conn| {
            let (crates, versions, downloads): (i64, i64, i64) = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(DISTINCT v.crate_id), COUNT(*), COALESCE(SUM(v.downloads), 0)
                     FROM versions v JOIN crates c ON c.id = v.crate_id
                     WHERE v.state = 'published' AND {NOT_A_COMPANION}"
                ))
                .map_err(db)?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db)?;
            Ok(Totals {
                crates: crates.max(0) as u64,
                versions: versions.max(0) as u64,
                downloads: downloads.max(0) as u64,
            })
        })
    }

    pub(super) fn session_key(&self) -> StoreResult<Vec<u8>> {
        let read = |conn: &Connection| {
            conn.prepare_cached("SELECT value FROM web_settings WHERE name = 'session_key'")
                .map_err(db)?
                .query_row([], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .map_err(db)
        };
        if let Some(key) = self.read(read)? {
            return Ok(key);
        }
        let mut fresh = vec![0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        // Several nodes may race here: the first insert wins, and everyone
        // reads back the winner.
        self.write(
            |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO web_settings (name, value) VALUES ('session_key', ?1)",
                    [&fresh],
                )
                .map_err(db)?;
                read(tx)?.ok_or_else(|| {
                    StoreError::backend(std::io::Error::other("session key vanished"))
                })
            },
            |_| {},
        )
    }
}
