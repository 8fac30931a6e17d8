//! Browsing, for the web UI, on PostgreSQL: the same tables and queries as
//! the embedded backend's `sqlite/browse.rs` (manifest metadata, dependency
//! edges and daily download counts beside the version rows). Every query
//! joins `versions` with `state = 'published'`.

use std::collections::BTreeMap;

use convoy_protocol::index::IndexPackage;
use convoy_protocol::name::canonical_name;
use deadpool_postgres::{GenericClient, Transaction};
use rand::RngCore;

use super::companions::NOT_A_COMPANION;
use super::{Inner, find_crate, pg};
use crate::rules::{self, json_list, kind_str, parse_kind, parse_list, today};
use crate::{
    CrateDetails, CrateSummary, Dependent, NewVersion, StoreError, StoreResult, Totals,
    VersionDetails, VersionMeta,
};

/// Records what the pages show of a version being published or staged, in
/// the publish transaction.
pub(super) async fn record_version(
    tx: &Transaction<'_>,
    version_id: i64,
    new: &NewVersion,
) -> StoreResult<()> {
    let m = &new.meta;
    tx.execute(
        "INSERT INTO version_meta (version_id, readme, readme_file, license, repository,
         homepage, documentation, keywords, categories, authors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (version_id) DO UPDATE SET readme = $2, readme_file = $3, license = $4,
         repository = $5, homepage = $6, documentation = $7, keywords = $8, categories = $9,
         authors = $10",
        &[
            &version_id,
            &m.readme,
            &m.readme_file,
            &m.license,
            &m.repository,
            &m.homepage,
            &m.documentation,
            &json_list(&m.keywords)?,
            &json_list(&m.categories)?,
            &json_list(&m.authors)?,
        ],
    )
    .await
    .map_err(pg)?;
    tx.execute(
        "DELETE FROM version_deps WHERE version_id = $1",
        &[&version_id],
    )
    .await
    .map_err(pg)?;
    // Only edges into this registry: a crates.io dependency has no page here.
    for dep in new.line.deps.iter().filter(|d| d.registry.is_none()) {
        let real = dep.package.as_deref().unwrap_or(&dep.name);
        tx.execute(
            "INSERT INTO version_deps (version_id, canonical, req, kind) VALUES ($1, $2, $3, $4)",
            &[
                &version_id,
                &canonical_name(real),
                &dep.req,
                &kind_str(dep.kind),
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

/// Adds flushed download counts to today's row of each version (in id
/// order, like the totals, so concurrent flushes cannot deadlock).
pub(super) async fn record_daily(tx: &Transaction<'_>, counts: &[(i64, u64)]) -> StoreResult<()> {
    let day = today();
    for (id, n) in counts {
        tx.execute(
            "INSERT INTO daily_downloads (version_id, day, downloads) VALUES ($1, $2, $3)
             ON CONFLICT (version_id, day) DO UPDATE
             SET downloads = daily_downloads.downloads + $3",
            &[id, &day, &(*n as i64)],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

async fn summary(
    c: &impl GenericClient,
    id: i64,
    name: String,
    description: Option<String>,
) -> StoreResult<CrateSummary> {
    let row = c
        .query_one(
            "SELECT COALESCE(SUM(downloads), 0)::BIGINT, COALESCE(MAX(created_at), 0)::BIGINT
             FROM versions WHERE crate_id = $1 AND state = 'published'",
            &[&id],
        )
        .await
        .map_err(pg)?;
    let versions: Vec<(String, bool)> = c
        .query(
            "SELECT num, yanked FROM versions WHERE crate_id = $1 AND state = 'published'",
            &[&id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(CrateSummary {
        max_version: rules::max_version(&versions),
        name,
        description,
        downloads: row.get::<_, i64>(0).max(0) as u64,
        updated_at: row.get(1),
    })
}

async fn summaries(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Vec<CrateSummary>> {
    let rows = c.query(sql, params).await.map_err(pg)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(summary(c, r.get(0), r.get(1), r.get(2)).await?);
    }
    Ok(out)
}

impl Inner {
    pub(super) async fn crate_details(&self, name: &str) -> StoreResult<Option<CrateDetails>> {
        let c = self.client().await?;
        let Some(krate) = find_crate(&c, name).await? else {
            return Ok(None);
        };
        let rows = c
            .query(
                "SELECT v.line, v.created_at, v.downloads, u.login, v.stage_id
                 FROM versions v JOIN users u ON u.id = v.published_by
                 WHERE v.crate_id = $1 AND v.state = 'published' ORDER BY v.id",
                &[&krate.id],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut versions = Vec::with_capacity(rows.len());
        for r in rows {
            let line: String = r.get(0);
            versions.push(VersionDetails {
                line: serde_json::from_str::<IndexPackage>(&line).map_err(StoreError::backend)?,
                created_at: r.get(1),
                downloads: r.get::<_, i64>(2).max(0) as u64,
                published_by: r.get(3),
                release: r.get(4),
            });
        }
        let description: Option<String> = c
            .query_one("SELECT description FROM crates WHERE id = $1", &[&krate.id])
            .await
            .map_err(pg)?
            .get(0);
        let owners: Vec<String> = c
            .query(
                "SELECT u.login FROM owners o JOIN users u ON u.id = o.user_id
                 WHERE o.crate_id = $1 ORDER BY u.login",
                &[&krate.id],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Some(CrateDetails {
            name: krate.name,
            description,
            owners,
            versions,
        }))
    }

    pub(super) async fn version_meta(
        &self,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<VersionMeta>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT m.readme, m.readme_file, m.license, m.repository, m.homepage,
                        m.documentation, m.keywords, m.categories, m.authors
                 FROM version_meta m JOIN versions v ON v.id = m.version_id
                 JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = $1 AND v.num = $2 AND v.state = 'published'",
                &[&canonical_name(name), &version],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| VersionMeta {
            readme: r.get(0),
            readme_file: r.get(1),
            license: r.get(2),
            repository: r.get(3),
            homepage: r.get(4),
            documentation: r.get(5),
            keywords: parse_list(r.get(6)),
            categories: parse_list(r.get(7)),
            authors: parse_list(r.get(8)),
        }))
    }

    pub(super) async fn reverse_dependencies(&self, name: &str) -> StoreResult<Vec<Dependent>> {
        let canonical = canonical_name(name);
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT c.name, v.num, d.req, d.kind FROM version_deps d
                     JOIN versions v ON v.id = d.version_id
                     JOIN crates c ON c.id = v.crate_id
                     WHERE d.canonical = $1 AND c.canonical != $1
                       AND v.state = 'published' AND NOT v.yanked AND {NOT_A_COMPANION}"
                ),
                &[&canonical],
            )
            .await
            .map_err(pg)?;
        // The highest depending version of each crate speaks for it.
        let mut best: BTreeMap<String, (semver::Version, Dependent)> = BTreeMap::new();
        for r in rows {
            let (name, num, req, kind): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let Ok(parsed) = semver::Version::parse(&num) else {
                continue;
            };
            if best.get(&name).is_none_or(|(v, _)| parsed > *v) {
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

    pub(super) async fn daily_downloads(
        &self,
        name: &str,
        days: u32,
    ) -> StoreResult<Vec<(i64, u64)>> {
        let since = today() - i64::from(days.saturating_sub(1));
        let c = self.client().await?;
        Ok(c.query(
            "SELECT d.day, SUM(d.downloads)::BIGINT FROM daily_downloads d
                 JOIN versions v ON v.id = d.version_id
                 JOIN crates c ON c.id = v.crate_id
                 WHERE c.canonical = $1 AND v.state = 'published' AND d.day >= $2
                 GROUP BY d.day ORDER BY d.day",
            &[&canonical_name(name), &since],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1).max(0) as u64))
        .collect())
    }

    pub(super) async fn user_crates(&self, login: &str) -> StoreResult<Option<Vec<CrateSummary>>> {
        let c = self.client().await?;
        if super::user_id(&c, login).await?.is_none() {
            return Ok(None);
        }
        summaries(
            &c,
            &format!(
                "SELECT c.id, c.name, c.description FROM crates c
                 JOIN owners o ON o.crate_id = c.id JOIN users u ON u.id = o.user_id
                 WHERE u.login = $1 AND {NOT_A_COMPANION} AND EXISTS
                   (SELECT 1 FROM versions v WHERE v.crate_id = c.id AND v.state = 'published')
                 ORDER BY c.canonical"
            ),
            &[&login],
        )
        .await
        .map(Some)
    }

    pub(super) async fn recent_crates(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        let c = self.client().await?;
        summaries(
            &c,
            &format!(
                "SELECT c.id, c.name, c.description FROM crates c
                 JOIN versions v ON v.crate_id = c.id AND v.state = 'published'
                 WHERE {NOT_A_COMPANION}
                 GROUP BY c.id ORDER BY MAX(v.created_at) DESC, MAX(v.id) DESC LIMIT $1"
            ),
            &[&i64::from(limit)],
        )
        .await
    }

    pub(super) async fn most_downloaded(&self, limit: u32) -> StoreResult<Vec<CrateSummary>> {
        let c = self.client().await?;
        summaries(
            &c,
            &format!(
                "SELECT c.id, c.name, c.description FROM crates c
                 JOIN versions v ON v.crate_id = c.id AND v.state = 'published'
                 WHERE {NOT_A_COMPANION}
                 GROUP BY c.id ORDER BY SUM(v.downloads) DESC, c.canonical LIMIT $1"
            ),
            &[&i64::from(limit)],
        )
        .await
    }

    pub(super) async fn search_summaries(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<CrateSummary>, u64)> {
        // The search rules live in `Inner::search`; this only adds figures.
        let (hits, total) = self.search(query, page, per_page).await?;
        let c = self.client().await?;
        let mut list = Vec::with_capacity(hits.len());
        for hit in hits {
            if let Some(krate) = find_crate(&c, &hit.name).await? {
                list.push(summary(&c, krate.id, hit.name, hit.description).await?);
            }
        }
        Ok((list, total))
    }

    pub(super) async fn totals(&self) -> StoreResult<Totals> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "SELECT COUNT(DISTINCT v.crate_id), COUNT(*), COALESCE(SUM(v.downloads), 0)::BIGINT
                     FROM versions v JOIN crates c ON c.id = v.crate_id
                     WHERE v.state = 'published' AND {NOT_A_COMPANION}"
                ),
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(Totals {
            crates: r.get::<_, i64>(0).max(0) as u64,
            versions: r.get::<_, i64>(1).max(0) as u64,
            downloads: r.get::<_, i64>(2).max(0) as u64,
        })
    }

    /// The web session key, shared by every node: the first node to ask
    /// creates it, and every node reads back the winner.
    pub(super) async fn session_key(&self) -> StoreResult<Vec<u8>> {
        let c = self.client().await?;
        let mut fresh = vec![0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        c.execute(
            "INSERT INTO web_settings (name, value) VALUES ('session_key', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&fresh],
        )
        .await
        .map_err(pg)?;
        Ok(c.query_one(
            "SELECT value FROM web_settings WHERE name = 'session_key'",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0))
    }
}
