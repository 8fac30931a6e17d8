//! The writing half of `cargo convoy migrate` (see `crate::migrate`): rows
//! from an embedded registry, inserted so that a second run skips what the
//! first one wrote.

use std::collections::HashMap;

use super::{PgStore, lock_crates, pg, render_index_file};
use crate::migrate::{Crate, MigrateError, Stage, Token, User};
use crate::{StoreError, StoreResult};

/// Source user ids to target user ids.
pub(crate) type UserMap = HashMap<i64, i64>;

fn mapped(users: &UserMap, id: i64) -> StoreResult<i64> {
    users.get(&id).copied().ok_or_else(|| {
        StoreError::backend(std::io::Error::other(format!(
            "the embedded database names user id {id}, which does not exist"
        )))
    })
}

impl PgStore {
    pub(crate) async fn import_users(&self, users: &[User]) -> StoreResult<UserMap> {
        let client = self.inner.client().await?;
        let mut map = HashMap::new();
        for u in users {
            client
                .execute(
                    "INSERT INTO users (login, created_at) VALUES ($1, $2)
                     ON CONFLICT (login) DO NOTHING",
                    &[&u.login, &u.created_at],
                )
                .await
                .map_err(pg)?;
            let id: i64 = client
                .query_one("SELECT id FROM users WHERE login = $1", &[&u.login])
                .await
                .map_err(pg)?
                .get(0);
            map.insert(u.id, id);
        }
        Ok(map)
    }

    pub(crate) async fn import_tokens(
        &self,
        tokens: &[Token],
        users: &UserMap,
    ) -> StoreResult<usize> {
        let client = self.inner.client().await?;
        let mut copied = 0;
        for t in tokens {
            copied += client
                .execute(
                    "INSERT INTO tokens (id, user_id, name, hash, scopes, crates, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                    &[
                        &t.id,
                        &mapped(users, t.user_id)?,
                        &t.name,
                        &t.hash,
                        &t.scopes,
                        &t.crates,
                        &t.expires_at,
                        &t.created_at,
                    ],
                )
                .await
                .map_err(pg)? as usize;
        }
        Ok(copied)
    }

    pub(crate) async fn import_stages(&self, stages: &[Stage], users: &UserMap) -> StoreResult<()> {
        let client = self.inner.client().await?;
        for s in stages {
            let committed_by = s.committed_by.map(|u| mapped(users, u)).transpose()?;
            client
                .execute(
                    "INSERT INTO stages (id, user_id, scopes, crates, state, created_at, expires_at,
                     committed_at, committed_by) VALUES ($1, $2, $3, $4, 'committed', $5, $6, $7, $8)
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &s.id,
                        &mapped(users, s.user_id)?,
                        &s.scopes,
                        &s.crates,
                        &s.created_at,
                        &s.expires_at,
                        &s.committed_at,
                        &committed_by,
                    ],
                )
                .await
                .map_err(pg)?;
        }
        Ok(())
    }

    /// One crate in one transaction: `(versions copied, versions present)`.
    pub(crate) async fn import_crate(
        &self,
        krate: &Crate,
        users: &UserMap,
    ) -> Result<(usize, usize), MigrateError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock_crates(&tx, [krate.canonical.as_str()]).await?;
        tx.execute(
            "INSERT INTO crates (name, canonical, description, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (canonical) DO NOTHING",
            &[
                &krate.name,
                &krate.canonical,
                &krate.description,
                &krate.created_at,
            ],
        )
        .await
        .map_err(pg)?;
        let crate_id: i64 = tx
            .query_one(
                "SELECT id FROM crates WHERE canonical = $1",
                &[&krate.canonical],
            )
            .await
            .map_err(pg)?
            .get(0);
        for owner in &krate.owners {
            tx.execute(
                "INSERT INTO owners (crate_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&crate_id, &mapped(users, *owner)?],
            )
            .await
            .map_err(pg)?;
        }
        let (mut copied, mut present) = (0, 0);
        for v in &krate.versions {
            let inserted = tx
                .execute(
                    "INSERT INTO versions (crate_id, num, num_key, cksum, yanked, line, published_by,
                     created_at, downloads, state, stage_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'published', $10)
                     ON CONFLICT (crate_id, num_key) DO NOTHING",
                    &[
                        &crate_id,
                        &v.num,
                        &v.num_key,
                        &v.cksum,
                        &v.yanked,
                        &v.line,
                        &mapped(users, v.published_by)?,
                        &v.created_at,
                        &v.downloads,
                        &v.stage_id,
                    ],
                )
                .await
                .map_err(pg)?;
            if inserted == 1 {
                copied += 1;
                continue;
            }
            present += 1;
            let existing: String = tx
                .query_one(
                    "SELECT cksum FROM versions WHERE crate_id = $1 AND num_key = $2",
                    &[&crate_id, &v.num_key],
                )
                .await
                .map_err(pg)?
                .get(0);
            if existing != v.cksum {
                return Err(MigrateError::Conflict {
                    name: krate.name.clone(),
                    version: v.num.clone(),
                    existing,
                    expected: v.cksum.clone(),
                });
            }
        }
        render_index_file(&tx, crate_id, &krate.canonical).await?;
        tx.commit().await.map_err(pg)?;
        Ok((copied, present))
    }
}
