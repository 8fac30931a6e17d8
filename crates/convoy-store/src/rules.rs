//! The registry's rules, apart from any database.
//!
//! Every backend gathers the same facts (does the crate exist, under which
//! spelling, does the publisher own it, who holds the version's slot, which
//! dependencies exist) inside its own transaction, and then asks these
//! functions for the verdict. Keeping the verdicts here is what keeps the
//! SQLite and PostgreSQL backends from drifting apart: a rule has one home.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use convoy_protocol::index::{DependencyKind, IndexPackage};
use convoy_protocol::name::canonical_name;
use convoy_protocol::scope::{CrateGlob, EndpointScope};
use sha2::{Digest, Sha256};

use crate::{AuthenticatedToken, IndexFile, NewVersion, PublishOutcome, StoreError, StoreResult};

/// Seconds since the Unix epoch, the unit every backend stores times in.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A stored second count as a time.
pub(crate) fn from_secs(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

/// A time as stored seconds.
pub(crate) fn to_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The version's identity for uniqueness: build metadata does not count.
pub(crate) fn version_key(version: &str) -> String {
    match semver::Version::parse(version) {
        Ok(mut v) => {
            v.build = semver::BuildMetadata::EMPTY;
            v.to_string()
        }
        Err(_) => version.to_owned(),
    }
}

/// An existing crate as a publish sees it.
#[derive(Debug, Clone)]
pub(crate) struct ExistingCrate {
    /// The backend's row id.
    pub id: i64,
    /// The spelling it was first published under.
    pub name: String,
    /// Whether the publisher is one of the owners that decide for it (a
    /// companion's are its parent's).
    pub publisher_owns: bool,
    /// The crate those owners own, named when the publisher is not one.
    pub owner_name: String,
}

/// Who holds a version's slot: the row with the same version key.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The backend's row id.
    pub row: i64,
    /// `published`, `staged` or `aborted`.
    pub state: String,
    /// The checksum the row was uploaded with.
    pub cksum: String,
    /// The expiry of the row's stage, if it has one.
    pub stage_expires_at: Option<i64>,
}

/// Everything a backend found out for one publish.
#[derive(Debug, Clone)]
pub(crate) struct PublishFacts {
    /// The crate under any spelling, if it exists.
    pub krate: Option<ExistingCrate>,
    /// The slot of the version, if the crate exists and the slot is taken.
    pub slot: Option<Slot>,
    /// Registry dependencies (see [`dependency_names`]) that name no crate.
    pub missing_dependencies: Vec<String>,
}

/// The verdict on a publish that passes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    /// What the publish will do.
    pub outcome: PublishOutcome,
    /// The existing crate, if any.
    pub crate_id: Option<i64>,
    /// The row of an aborted staged version with the same bytes, to reuse.
    pub reuse_row: Option<i64>,
}

/// The dependencies on this registry that must name an existing crate (its
/// real name, not a rename), without the crate itself, each once.
pub(crate) fn dependency_names(line: &IndexPackage) -> Vec<String> {
    let own = canonical_name(&line.name);
    let mut names: Vec<String> = Vec::new();
    for dep in line.deps.iter().filter(|d| d.registry.is_none()) {
        let real = dep.package.as_deref().unwrap_or(&dep.name);
        if canonical_name(real) != own && !names.iter().any(|n| n == real) {
            names.push(real.to_owned());
        }
    }
    names
}

/// Every rule a publish must pass, in the order their errors take
/// precedence: the spelling, the token's scope, ownership, the slot, and
/// the dependencies (which must all exist, as on crates.io, or the version
/// would be unusable).
pub(crate) fn validate_publish(new: &NewVersion, facts: &PublishFacts) -> StoreResult<Checked> {
    let line = &new.line;
    let checked = match &facts.krate {
        Some(krate) => {
            if krate.name != line.name {
                return Err(StoreError::NameConflict {
                    existing: krate.name.clone(),
                });
            }
            if !new.may_update {
                return Err(StoreError::MissingScope {
                    scope: EndpointScope::PublishUpdate,
                    name: krate.name.clone(),
                });
            }
            if !krate.publisher_owns {
                return Err(StoreError::NotOwner {
                    name: krate.owner_name.clone(),
                });
            }
            Checked {
                outcome: PublishOutcome::NewVersion,
                crate_id: Some(krate.id),
                reuse_row: check_slot(line, facts.slot.as_ref())?,
            }
        }
        None => {
            if !new.may_create {
                return Err(StoreError::MissingScope {
                    scope: EndpointScope::PublishNew,
                    name: line.name.clone(),
                });
            }
            Checked {
                outcome: PublishOutcome::NewCrate,
                crate_id: None,
                reuse_row: None,
            }
        }
    };
    if !facts.missing_dependencies.is_empty() {
        return Err(StoreError::UnknownDependencies {
            names: facts.missing_dependencies.clone(),
        });
    }
    Ok(checked)
}

/// Who holds the version's slot. A published or staged version holds it
/// (a stage past its expiry no longer does); an aborted one lets the same
/// bytes in again and nothing else, because clients may have cached what
/// the staging view served.
fn check_slot(line: &IndexPackage, slot: Option<&Slot>) -> StoreResult<Option<i64>> {
    let Some(slot) = slot else {
        return Ok(None);
    };
    let expired = slot.stage_expires_at.is_some_and(|t| t <= now_secs());
    match slot.state.as_str() {
        "staged" if !expired => Err(StoreError::VersionStaged {
            name: line.name.clone(),
            version: line.vers.clone(),
        }),
        "aborted" | "staged" if slot.cksum != line.cksum => Err(StoreError::VersionBurnt {
            name: line.name.clone(),
            version: line.vers.clone(),
        }),
        "aborted" | "staged" => Ok(Some(slot.row)),
        _ => Err(StoreError::VersionExists {
            name: line.name.clone(),
            version: line.vers.clone(),
        }),
    }
}

/// A crate's index file from its published lines in publish order, or
/// `None` when it has none (to readers the crate does not exist). The etag
/// is a digest of the content, so every backend and every node computes
/// the same one for the same file.
pub(crate) fn render_index<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    modified: SystemTime,
) -> Option<IndexFile> {
    let mut content = Vec::new();
    for line in lines {
        content.extend_from_slice(line.as_bytes());
        content.push(b'\n');
    }
    if content.is_empty() {
        return None;
    }
    Some(IndexFile {
        etag: etag_of(&content),
        content: Bytes::from(content),
        last_modified: modified,
    })
}

/// The strong validator of an index file's bytes.
pub(crate) fn etag_of(content: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(content))[..32])
}

/// Milliseconds since the epoch, how backends store `last_modified`.
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The inverse of [`to_millis`].
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The highest version for search results: the highest unyanked one, else
/// the highest of all, else `0.0.0`.
pub(crate) fn max_version(versions: &[(String, bool)]) -> String {
    let parsed = |live_only: bool| {
        versions
            .iter()
            .filter(|(_, yanked)| !live_only || !yanked)
            .filter_map(|(v, _)| semver::Version::parse(v).ok())
            .max()
    };
    parsed(true)
        .or_else(|| parsed(false))
        .map(|v| v.to_string())
        .unwrap_or_else(|| "0.0.0".to_owned())
}

/// `LIKE` patterns for a search: one over canonical names, one over
/// descriptions, and the canonical query for ranking an exact match first.
/// The query is canonicalized before it is escaped, so a `-` (which becomes
/// `_`) is escaped and never acts as a wildcard; the escape character is
/// `\`.
pub(crate) fn search_patterns(query: &str) -> (String, String, String) {
    fn escape(s: &str) -> String {
        s.chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    }
    let exact = canonical_name(query);
    (
        format!("%{}%", escape(&exact)),
        format!("%{}%", escape(query)),
        exact,
    )
}

/// Scopes or globs as stored: comma-separated.
pub(crate) fn join_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(",")
}

/// The inverse of [`join_list`].
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|p| !p.is_empty())
}

/// Stored scopes, with unknown ones dropped.
pub(crate) fn parse_scopes(s: &str) -> Vec<EndpointScope> {
    split_list(s).filter_map(|s| s.parse().ok()).collect()
}

/// Stored globs, with invalid ones dropped.
pub(crate) fn parse_globs(s: &str) -> Vec<CrateGlob> {
    split_list(s)
        .filter_map(|s| CrateGlob::new(s).ok())
        .collect()
}

/// The scopes a new token gets: all when none are asked for.
pub(crate) fn token_scopes(asked: &[EndpointScope]) -> String {
    if asked.is_empty() {
        join_list(EndpointScope::ALL.iter().map(|s| s.as_str()))
    } else {
        join_list(asked.iter().map(|s| s.as_str()))
    }
}

/// A stage token's scopes and globs: it can only upload, and only what its
/// creator could.
pub(crate) fn stage_token_grants(creator: &AuthenticatedToken) -> (String, String) {
    let scopes = join_list(
        creator
            .scopes
            .iter()
            .filter(|s| matches!(s, EndpointScope::PublishNew | EndpointScope::PublishUpdate))
            .map(|s| s.as_str()),
    );
    let crates = join_list(creator.crates.iter().map(|g| g.as_str()));
    (scopes, crates)
}

/// Whether a token row that matched is usable now: unexpired, and for a
/// stage token, its stage open and unexpired.
pub(crate) fn token_usable(
    expires_at: Option<i64>,
    stage: Option<&str>,
    stage_state: Option<&str>,
    stage_expires_at: Option<i64>,
) -> bool {
    let now = now_secs();
    if expires_at.is_some_and(|t| t <= now) {
        return false;
    }
    stage.is_none() || (stage_state == Some("open") && stage_expires_at.is_some_and(|t| t > now))
}

/// The latest expiry a stage opened by a token may have: its own lifetime,
/// or the opening token's expiry if that comes first, so a stage never
/// outlives the token that opened it.
pub(crate) fn bounded_expiry(now: i64, ttl: Duration, creator_expires: Option<i64>) -> i64 {
    let wanted = now.saturating_add(ttl.as_secs() as i64);
    creator_expires.map_or(wanted, |limit| wanted.min(limit))
}

/// A fresh stage id.
pub(crate) fn new_stage_id() -> String {
    let mut raw = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    format!("stg_{}", hex::encode(raw))
}

/// A stored stage state.
pub(crate) fn parse_stage_state(s: &str) -> crate::StageState {
    use crate::StageState;
    match s {
        "open" => StageState::Open,
        "committed" => StageState::Committed,
        "expired" => StageState::Expired,
        _ => StageState::Aborted,
    }
}

/// One staged version, as a commit sees it.
#[derive(Debug, Clone)]
pub(crate) struct StagedLine {
    /// The backend's crate row id.
    pub crate_id: i64,
    /// The line to publish.
    pub line: IndexPackage,
}

/// The non-dev dependencies on this registry of staged lines, by real
/// name, each once: what a commit must find resolvable.
pub(crate) fn commit_dependency_names(rows: &[StagedLine]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        for dep in row
            .line
            .deps
            .iter()
            .filter(|d| d.registry.is_none() && d.kind != Some(DependencyKind::Dev))
        {
            let real = dep.package.as_deref().unwrap_or(&dep.name);
            if !names.iter().any(|n| n == real) {
                names.push(real.to_owned());
            }
        }
    }
    names
}

/// Everything that would make a commit wrong, one sentence per problem:
/// ownership (it may have changed since upload), the stage's crate globs,
/// and every dependency on this registry resolving within published
/// (unyanked) plus staged versions. `owns(crate_id)` says whether the
/// committer owns a crate; `visible(name)` lists the versions of a
/// dependency that count, `None` when no such crate exists.
pub(crate) fn commit_problems(
    rows: &[StagedLine],
    globs: &[CrateGlob],
    owns: impl Fn(i64) -> bool,
    visible: impl Fn(&str) -> Option<Vec<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if rows.is_empty() {
        problems.push("nothing was uploaded into the stage".to_owned());
        return problems;
    }
    for row in rows {
        let what = format!("`{}@{}`", row.line.name, row.line.vers);
        if !owns(row.crate_id) {
            problems.push(format!(
                "{what}: you are not an owner of crate `{}`",
                row.line.name
            ));
        }
        if !globs.is_empty() && !globs.iter().any(|g| g.matches(&row.line.name)) {
            problems.push(format!(
                "{what}: the stage's token does not allow this crate"
            ));
        }
        for dep in row
            .line
            .deps
            .iter()
            .filter(|d| d.registry.is_none() && d.kind != Some(DependencyKind::Dev))
        {
            let real = dep.package.as_deref().unwrap_or(&dep.name);
            let resolvable = semver::VersionReq::parse(&dep.req).is_ok_and(|req| {
                visible(real).is_some_and(|versions| {
                    versions
                        .iter()
                        .filter_map(|v| semver::Version::parse(v).ok())
                        .any(|v| req.matches(&v))
                })
            });
            if !resolvable {
                problems.push(format!(
                    "{what}: dependency `{real}` `{}` matches no published or staged version",
                    dep.req
                ));
            }
        }
    }
    problems
}

/// A publish rate: a token bucket per user that refills at a steady rate,
/// as crates.io does it. A refused publish gets 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many publishes may happen back to back.
    pub burst: u32,
    /// How long it takes to earn one more.
    pub refill: Duration,
}

/// A bucket's state: tokens left, as of `updated_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub tokens: f64,
    pub updated_ms: i64,
}

/// Takes one token from `bucket` (a full one when `None`) at `now_ms`:
/// the new state, and how long to wait when none was left. Every backend
/// runs this same arithmetic, in memory or on a locked row.
pub(crate) fn take_token(
    limit: RateLimit,
    bucket: Option<Bucket>,
    now_ms: i64,
) -> (Bucket, Result<(), Duration>) {
    let mut b = bucket.unwrap_or(Bucket {
        tokens: f64::from(limit.burst),
        updated_ms: now_ms,
    });
    let per_token = limit.refill.as_secs_f64().max(f64::EPSILON);
    let elapsed = (now_ms - b.updated_ms).max(0) as f64 / 1000.0;
    b.tokens = (b.tokens + elapsed / per_token).min(f64::from(limit.burst));
    b.updated_ms = now_ms;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        (b, Ok(()))
    } else {
        let wait = Duration::from_secs_f64((1.0 - b.tokens) * per_token);
        (b, Err(wait))
    }
}

/// Milliseconds on a monotonic-enough clock for rate buckets; wall time,
/// because buckets in a database are shared by nodes that share no
/// `Instant`.
pub(crate) fn now_millis() -> i64 {
    to_millis(SystemTime::now())
}

/// Buffered download counts: a download costs a map update, and the counts
/// reach the database in one batch per interval (and on shutdown), so no
/// request waits on a write.
#[derive(Debug)]
pub(crate) struct PendingDownloads {
    pub counts: std::collections::HashMap<i64, u64>,
    /// When each token was last presented (an update per authenticated
    /// request would put a write on every read).
    pub token_uses: std::collections::HashMap<String, i64>,
    pub since: Instant,
}

impl Default for PendingDownloads {
    fn default() -> Self {
        Self {
            counts: Default::default(),
            token_uses: Default::default(),
            since: Instant::now(),
        }
    }
}

/// How long buffered download counts may wait before they are written.
pub(crate) const DOWNLOAD_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

impl PendingDownloads {
    /// Counts one download; says whether this download should write the
    /// counts itself: at most once an interval, so that even without the
    /// periodic flush a count is visible within about a second.
    pub(crate) fn add(&mut self, version_id: i64) -> bool {
        *self.counts.entry(version_id).or_default() += 1;
        let due = self.since.elapsed() >= DOWNLOAD_FLUSH_INTERVAL;
        if due {
            self.since = Instant::now();
        }
        due
    }

    /// Takes the batch to write.
    pub(crate) fn take(&mut self) -> std::collections::HashMap<i64, u64> {
        std::mem::take(&mut self.counts)
    }

    /// Puts a batch back after a failed write, so no count is lost.
    pub(crate) fn restore(&mut self, batch: std::collections::HashMap<i64, u64>) {
        for (id, n) in batch {
            *self.counts.entry(id).or_default() += n;
        }
    }
}

// Browsing (web UI): the encodings both backends store the pages' data in.

const SECONDS_PER_DAY: i64 = 86_400;

/// Today as a UTC day number: the bucket of the daily download counts.
pub(crate) fn today() -> i64 {
    now_secs().div_euclid(SECONDS_PER_DAY)
}

/// A dependency kind as the browsing tables store it.
pub(crate) fn kind_str(kind: Option<DependencyKind>) -> &'static str {
    match kind.unwrap_or(DependencyKind::Normal) {
        DependencyKind::Normal => "normal",
        DependencyKind::Build => "build",
        DependencyKind::Dev => "dev",
    }
}

/// The inverse of [`kind_str`]; anything unknown reads as normal.
pub(crate) fn parse_kind(s: &str) -> DependencyKind {
    match s {
        "build" => DependencyKind::Build,
        "dev" => DependencyKind::Dev,
        _ => DependencyKind::Normal,
    }
}

/// Keywords and categories as one stored JSON column.
pub(crate) fn json_list(list: &[String]) -> StoreResult<String> {
    serde_json::to_string(list).map_err(StoreError::backend)
}

/// The inverse of [`json_list`]; a damaged column reads as empty.
pub(crate) fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_waits() {
        let limit = RateLimit {
            burst: 2,
            refill: Duration::from_secs(60),
        };
        let (b, r) = take_token(limit, None, 0);
        assert!(r.is_ok());
        let (b, r) = take_token(limit, Some(b), 0);
        assert!(r.is_ok());
        let (_, r) = take_token(limit, Some(b), 1000);
        let wait = r.expect_err("bucket empty");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
    }

    #[test]
    fn search_escapes_after_canonicalizing() {
        let (name, text, exact) = search_patterns("a-b%");
        assert_eq!(exact, "a_b%");
        assert_eq!(name, "%a\\_b\\%%");
        assert_eq!(text, "%a-b\\%%");
    }
}
