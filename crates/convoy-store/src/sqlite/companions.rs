//! Companions in SQLite (`docs/SUBLIBRARIES.md`): one row per companion
//! crate naming its parent by canonical name, since a companion is
//! uploaded before its parent exists. The rules themselves are in
//! [`crate::companion`]; this module gathers the facts and applies them
//! from small hooks in the generic code.

use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{CrateRow, db, find_crate, is_owner, render_index_file};
use crate::companion::{check_declaration, dependency_allowed, dependency_refused};
use crate::{IndexFile, NewVersion, StoreError, StoreResult, UserId};

/// Created on every open; adding a table needs no schema version.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS companions (
    crate_id INTEGER PRIMARY KEY REFERENCES crates(id),
    parent TEXT NOT NULL,
    parent_name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS companions_parent ON companions(parent);
";

/// The search filter that hides companions (`c` is the crates table).
pub(super) const NOT_A_COMPANION: &str =
    "NOT EXISTS (SELECT 1 FROM companions k WHERE k.crate_id = c.id)";

/// The parent (as declared) of a companion crate.
fn parent_of(conn: &Connection, crate_id: i64) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT parent_name FROM companions WHERE crate_id = ?1")
        .map_err(db)?
        .query_row([crate_id], |r| r.get(0))
        .optional()
        .map_err(db)
}

/// The crate whose owners decide for `krate`: its parent when it is a
/// companion whose parent exists, otherwise itself.
pub(super) fn owner_crate(conn: &Connection, krate: CrateRow) -> StoreResult<CrateRow> {
    match parent_of(conn, krate.id)? {
        Some(parent) => Ok(find_crate(conn, &parent)?.unwrap_or(krate)),
        None => Ok(krate),
    }
}

/// `require_owner` with a companion's owners being its parent's.
pub(super) fn require_owner(conn: &Connection, krate: &CrateRow, user: UserId) -> StoreResult<()> {
    let owner = owner_crate(
        conn,
        CrateRow {
            id: krate.id,
            name: krate.name.clone(),
        },
    )?;
    if is_owner(conn, owner.id, user)? {
        Ok(())
    } else {
        Err(StoreError::NotOwner { name: owner.name })
    }
}

/// Every companion rule of a publish, read-only: the crate keeps its kind,
/// a new companion's publisher owns the parent (when it exists), a new
/// parent's publisher owns the companions already uploaded for it, and no
/// outsider depends on a companion.
pub(super) fn validate(
    conn: &Connection,
    new: &NewVersion,
    existing: Option<&CrateRow>,
) -> StoreResult<()> {
    let line = &new.line;
    let declared = new.sublibrary_of.as_deref();
    match existing {
        Some(krate) => {
            let has_versions: bool = conn
                .prepare_cached(
                    "SELECT 1 FROM versions WHERE crate_id = ?1 AND state = 'published'",
                )
                .map_err(db)?
                .exists([krate.id])
                .map_err(db)?;
            check_declaration(
                &krate.name,
                parent_of(conn, krate.id)?.as_deref(),
                declared,
                has_versions,
            )?;
        }
        None => {
            if let Some(parent) = declared
                && let Some(p) = find_crate(conn, parent)?
                && !is_owner(conn, p.id, new.publisher)?
            {
                return Err(StoreError::NotOwner { name: p.name });
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT c.id, c.name FROM companions k JOIN crates c ON c.id = k.crate_id WHERE k.parent = ?1",
                )
                .map_err(db)?;
            let waiting = stmt
                .query_map([canonical_name(&line.name)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            for (id, name) in waiting {
                if !is_owner(conn, id, new.publisher)? {
                    return Err(StoreError::NotOwner { name });
                }
            }
        }
    }
    check_dependencies(conn, new)
}

fn check_dependencies(conn: &Connection, new: &NewVersion) -> StoreResult<()> {
    for dep in new.line.deps.iter().filter(|d| d.registry.is_none()) {
        let real = dep.package.as_deref().unwrap_or(&dep.name);
        let Some(krate) = find_crate(conn, real)? else {
            continue;
        };
        let Some(parent) = parent_of(conn, krate.id)? else {
            continue;
        };
        let owns = match find_crate(conn, &parent)? {
            Some(p) => is_owner(conn, p.id, new.publisher)?,
            None => is_owner(conn, krate.id, new.publisher)?,
        };
        if !dependency_allowed(&new.line.name, new.sublibrary_of.as_deref(), &parent, owns) {
            return Err(dependency_refused(&krate.name, &parent));
        }
    }
    Ok(())
}

/// Records a companion the first time one of its versions is written.
pub(super) fn record(tx: &Transaction<'_>, crate_id: i64, new: &NewVersion) -> StoreResult<()> {
    if let Some(parent) = &new.sublibrary_of {
        tx.execute(
            "INSERT OR IGNORE INTO companions (crate_id, parent, parent_name) VALUES (?1, ?2, ?3)",
            params![crate_id, canonical_name(parent), parent],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Refuses owner changes on a companion whose parent exists: its owners
/// are the parent's.
pub(super) fn refuse_owner_change(conn: &Connection, krate: &CrateRow) -> StoreResult<()> {
    if let Some(parent) = parent_of(conn, krate.id)?
        && find_crate(conn, &parent)?.is_some()
    {
        return Err(StoreError::OwnedWithParent {
            name: krate.name.clone(),
            parent,
        });
    }
    Ok(())
}

/// Yanks (or restores) the companions of `parent` at `version`, in the
/// parent's transaction; returns their new index files for the cache.
pub(super) fn cascade_yank(
    tx: &Transaction<'_>,
    parent: &str,
    version: &str,
    yanked: bool,
) -> StoreResult<Vec<(String, Option<IndexFile>)>> {
    let rows: Vec<(i64, i64, String, String)> = tx
        .prepare_cached(
            "SELECT v.id, c.id, c.canonical, v.line FROM companions k
             JOIN crates c ON c.id = k.crate_id
             JOIN versions v ON v.crate_id = c.id
             WHERE k.parent = ?1 AND v.num = ?2 AND v.state = 'published'",
        )
        .map_err(db)?
        .query_map(params![canonical_name(parent), version], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    let mut files = Vec::with_capacity(rows.len());
    for (version_id, crate_id, canonical, line) in rows {
        let mut line: IndexPackage = serde_json::from_str(&line).map_err(StoreError::backend)?;
        if line.yanked == yanked {
            continue;
        }
        line.yanked = yanked;
        let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
        tx.execute(
            "UPDATE versions SET yanked = ?2, line = ?3 WHERE id = ?1",
            params![version_id, yanked, json],
        )
        .map_err(db)?;
        files.push((
            canonical.clone(),
            render_index_file(tx, crate_id, &canonical)?,
        ));
    }
    Ok(files)
}

/// The names of `parent`'s companions.
pub(super) fn companions_of(conn: &Connection, parent: &str) -> StoreResult<Vec<String>> {
    conn.prepare_cached(
        "SELECT c.name FROM companions k JOIN crates c ON c.id = k.crate_id
         WHERE k.parent = ?1 ORDER BY c.canonical",
    )
    .map_err(db)?
    .query_map([canonical_name(parent)], |r| r.get(0))
    .map_err(db)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(db)
}
