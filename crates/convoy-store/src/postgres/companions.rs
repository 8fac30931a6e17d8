//! Companions in PostgreSQL (`docs/SUBLIBRARIES.md`), the same rows as the
//! embedded backend's: one per companion crate, naming its parent by
//! canonical name. The rules are in [`crate::companion`]; this module
//! gathers their facts.

use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use deadpool_postgres::{GenericClient, Transaction};

use super::{CrateRow, find_crate, is_owner, pg, render_index_file};
use crate::companion::{check_declaration, dependency_allowed, dependency_refused};
use crate::{NewVersion, StoreError, StoreResult};

/// The search filter that hides companions (`c` is the crates table).
pub(super) const NOT_A_COMPANION: &str =
    "NOT EXISTS (SELECT 1 FROM companions k WHERE k.crate_id = c.id)";

async fn parent_of(c: &impl GenericClient, crate_id: i64) -> StoreResult<Option<String>> {
    Ok(c.query_opt(
        "SELECT parent_name FROM companions WHERE crate_id = $1",
        &[&crate_id],
    )
    .await
    .map_err(pg)?
    .map(|r| r.get(0)))
}

/// The crate whose owners decide for `krate`: its parent when it is a
/// companion whose parent exists, otherwise itself.
pub(super) async fn owner_crate(c: &impl GenericClient, krate: CrateRow) -> StoreResult<CrateRow> {
    match parent_of(c, krate.id).await? {
        Some(parent) => Ok(find_crate(c, &parent).await?.unwrap_or(krate)),
        None => Ok(krate),
    }
}

/// Every companion rule of a publish, read-only (see the SQLite twin).
pub(super) async fn validate(
    c: &impl GenericClient,
    new: &NewVersion,
    existing: Option<&CrateRow>,
) -> StoreResult<()> {
    let line = &new.line;
    let declared = new.sublibrary_of.as_deref();
    match existing {
        Some(krate) => {
            let has_versions = c
                .query_opt(
                    "SELECT 1 FROM versions WHERE crate_id = $1 AND state = 'published' LIMIT 1",
                    &[&krate.id],
                )
                .await
                .map_err(pg)?
                .is_some();
            check_declaration(
                &krate.name,
                parent_of(c, krate.id).await?.as_deref(),
                declared,
                has_versions,
            )?;
        }
        None => {
            if let Some(parent) = declared
                && let Some(p) = find_crate(c, parent).await?
                && !is_owner(c, p.id, new.publisher).await?
            {
                return Err(StoreError::NotOwner { name: p.name });
            }
            let waiting = c
                .query(
                    "SELECT c.id, c.name FROM companions k JOIN crates c ON c.id = k.crate_id
                     WHERE k.parent = $1",
                    &[&canonical_name(&line.name)],
                )
                .await
                .map_err(pg)?;
            for r in waiting {
                let (id, name): (i64, String) = (r.get(0), r.get(1));
                if !is_owner(c, id, new.publisher).await? {
                    return Err(StoreError::NotOwner { name });
                }
            }
        }
    }
    for dep in new.line.deps.iter().filter(|d| d.registry.is_none()) {
        let real = dep.package.as_deref().unwrap_or(&dep.name);
        let Some(krate) = find_crate(c, real).await? else {
            continue;
        };
        let Some(parent) = parent_of(c, krate.id).await? else {
            continue;
        };
        let owns = match find_crate(c, &parent).await? {
            Some(p) => is_owner(c, p.id, new.publisher).await?,
            None => is_owner(c, krate.id, new.publisher).await?,
        };
        if !dependency_allowed(&new.line.name, new.sublibrary_of.as_deref(), &parent, owns) {
            return Err(dependency_refused(&krate.name, &parent));
        }
    }
    Ok(())
}

/// Records a companion the first time one of its versions is written.
pub(super) async fn record(
    tx: &Transaction<'_>,
    crate_id: i64,
    new: &NewVersion,
) -> StoreResult<()> {
    if let Some(parent) = &new.sublibrary_of {
        tx.execute(
            "INSERT INTO companions (crate_id, parent, parent_name) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&crate_id, &canonical_name(parent), parent],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

/// Refuses owner changes on a companion whose parent exists.
pub(super) async fn refuse_owner_change(
    c: &impl GenericClient,
    krate: &CrateRow,
) -> StoreResult<()> {
    if let Some(parent) = parent_of(c, krate.id).await?
        && find_crate(c, &parent).await?.is_some()
    {
        return Err(StoreError::OwnedWithParent {
            name: krate.name.clone(),
            parent,
        });
    }
    Ok(())
}

/// The canonical names of `parent`'s companions, for taking their locks
/// before a yank cascades to them.
pub(super) async fn canonicals_of(
    c: &impl GenericClient,
    parent: &str,
) -> StoreResult<Vec<String>> {
    Ok(c.query(
        "SELECT c.canonical FROM companions k JOIN crates c ON c.id = k.crate_id
         WHERE k.parent = $1",
        &[&canonical_name(parent)],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Yanks (or restores) the companions of `parent` at `version`, in the
/// parent's transaction.
pub(super) async fn cascade_yank(
    tx: &Transaction<'_>,
    parent: &str,
    version: &str,
    yanked: bool,
) -> StoreResult<()> {
    let rows = tx
        .query(
            "SELECT v.id, c.id, c.canonical, v.line FROM companions k
             JOIN crates c ON c.id = k.crate_id
             JOIN versions v ON v.crate_id = c.id
             WHERE k.parent = $1 AND v.num = $2 AND v.state = 'published'",
            &[&canonical_name(parent), &version],
        )
        .await
        .map_err(pg)?;
    for r in rows {
        let (version_id, crate_id, canonical, line): (i64, i64, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let mut line: IndexPackage = serde_json::from_str(&line).map_err(StoreError::backend)?;
        if line.yanked == yanked {
            continue;
        }
        line.yanked = yanked;
        let json = serde_json::to_string(&line).map_err(StoreError::backend)?;
        tx.execute(
            "UPDATE versions SET yanked = $2, line = $3 WHERE id = $1",
            &[&version_id, &yanked, &json],
        )
        .await
        .map_err(pg)?;
        render_index_file(tx, crate_id, &canonical).await?;
    }
    Ok(())
}

/// The names of `parent`'s companions.
pub(super) async fn companions_of(
    c: &impl GenericClient,
    parent: &str,
) -> StoreResult<Vec<String>> {
    Ok(c.query(
        "SELECT c.name FROM companions k JOIN crates c ON c.id = k.crate_id
         WHERE k.parent = $1 ORDER BY c.canonical",
        &[&canonical_name(parent)],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| r.get(0))
    .collect())
}
