//! Where a Convoy registry keeps its state.
//!
//! The server is stateless apart from two stores, so that an instance can be
//! restarted (or, with a shared backend, replicated) without losing anything:
//!
//! - [`Store`]: metadata — users, tokens, crates, versions, owners and the
//!   rendered sparse-index files. Every mutation is one transaction, and the
//!   index file of a crate is rewritten inside the same transaction as the
//!   version row, so readers never see one without the other.
//! - [`BlobStore`]: the `.crate` files, addressed by their sha256. Content
//!   addressing is what makes a crash harmless: a blob written before a crash
//!   whose metadata never committed is just garbage, and a retry of the same
//!   bytes lands on the same key, while different bytes land on another.
//!
//! The publish protocol is therefore: write the blob durably, then commit the
//! metadata. An index line can never name a missing blob.
//!
//! The embedded backend is [`sqlite::SqliteStore`] plus [`fs::FsBlobStore`];
//! the scale-out backend is [`postgres::PgStore`] plus
//! [`object::ObjectBlobStore`] (any S3-compatible bucket). [`open`] picks
//! them from URLs. Both metadata backends share their rules through the
//! private `rules` module and pass one conformance suite
//! (`tests/conformance.rs`).

pub mod admin;
pub mod backend;
pub mod cache;
pub mod companion;
pub mod fs;
pub mod migrate;
pub mod object;
pub mod postgres;
mod rules;
pub mod sqlite;
mod token;

pub use backend::{Backend, BackendError, Backends, OpenOptions, Storage, open};
pub use rules::RateLimit;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use convoy_protocol::api::{Owner, SearchHit};
use convoy_protocol::index::IndexPackage;
use convoy_protocol::scope::{CrateGlob, EndpointScope};

pub use convoy_protocol::staging::{Release, Stage, StageState, StagedCrate};
pub use token::{TokenSecret, hash_token};

/// A user's numeric id.
pub type UserId = i64;

/// A rendered sparse-index file, ready to serve.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// The file's bytes: one JSON line per version.
    pub content: Bytes,
    /// Strong validator, quoted as HTTP wants it.
    pub etag: String,
    /// When the file last changed.
    pub last_modified: SystemTime,
}

/// A version to publish, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The line the index will hold; carries name, version and checksum.
    pub line: IndexPackage,
    /// Shown by search.
    pub description: Option<String>,
    /// Who publishes.
    pub publisher: UserId,
    /// Whether the token may create a crate that does not exist yet.
    pub may_create: bool,
    /// Whether the token may add a version to an existing crate.
    pub may_update: bool,
    /// What the web UI shows beside the index line.
    pub meta: VersionMeta,
    /// The parent this version is a companion of (`[package.metadata.convoy]
    /// sublibrary-of`), when the registry offers companions; `None` for an
    /// ordinary crate. See [`companion`].
    pub sublibrary_of: Option<String>,
}

/// What a version's manifest says about it beyond the index line, kept so
/// the web UI can show it. Recorded at publish (and at staging, visible
/// only once the stage commits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionMeta {
    /// The README's Markdown, as cargo uploaded it.
    pub readme: Option<String>,
    /// The README's path in the package, to resolve relative links.
    pub readme_file: Option<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// Source repository URL.
    pub repository: Option<String>,
    /// Homepage URL.
    pub homepage: Option<String>,
    /// Documentation URL.
    pub documentation: Option<String>,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// Category slugs.
    pub categories: Vec<String>,
    /// Authors.
    pub authors: Vec<String>,
}

/// One crate in a list (home page, search, a user's crates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateSummary {
    /// Crate name, original case.
    pub name: String,
    /// Highest non-yanked version (highest version when all are yanked).
    pub max_version: String,
    /// Description of the latest publish.
    pub description: Option<String>,
    /// Downloads of every version.
    pub downloads: u64,
    /// When the last version was published, in Unix seconds.
    pub updated_at: i64,
}

/// A published crate with every published version, for its page.
#[derive(Debug, Clone)]
pub struct CrateDetails {
    /// Crate name, original case.
    pub name: String,
    /// Description of the latest publish.
    pub description: Option<String>,
    /// Owners' logins, sorted.
    pub owners: Vec<String>,
    /// Published versions, oldest first.
    pub versions: Vec<VersionDetails>,
}

/// A published version.
#[derive(Debug, Clone)]
pub struct VersionDetails {
    /// The version's index line: dependencies, features, yank state.
    pub line: IndexPackage,
    /// When it was published, in Unix seconds.
    pub created_at: i64,
    /// Its downloads.
    pub downloads: u64,
    /// Publisher's login.
    pub published_by: String,
    /// The committed release it came from, if it was staged.
    pub release: Option<String>,
}

/// A crate whose published, non-yanked versions depend on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// The depending crate.
    pub name: String,
    /// Its highest version that has the dependency.
    pub version: String,
    /// The requirement that version states.
    pub req: String,
    /// The edge kind.
    pub kind: convoy_protocol::index::DependencyKind,
}

/// Registry-wide counts for the home page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Crates with at least one published version.
    pub crates: u64,
    /// Published versions.
    pub versions: u64,
    /// Downloads of every version.
    pub downloads: u64,
}

/// What a successful publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The crate is new, and the publisher now owns it.
    NewCrate,
    /// A version was added to an existing crate.
    NewVersion,
}

/// A token that matched, with what it allows.
#[derive(Debug, Clone)]
pub struct AuthenticatedToken {
    /// The token's public id (never its secret), for revoking it and for
    /// binding stage tokens to it.
    pub id: String,
    /// When it stops working, if ever. A stage opened with it cannot outlive
    /// it.
    pub expires_at: Option<SystemTime>,
    /// The token's owner.
    pub user_id: UserId,
    /// The owner's login.
    pub login: String,
    /// Allowed actions.
    pub scopes: Vec<EndpointScope>,
    /// Allowed crates; empty means every crate.
    pub crates: Vec<CrateGlob>,
    /// The stage this token uploads into, for a stage token.
    pub stage: Option<String>,
}

impl AuthenticatedToken {
    /// Whether the token may perform `scope` on `crate_name`.
    pub fn allows(&self, scope: EndpointScope, crate_name: &str) -> bool {
        self.scopes.contains(&scope)
            && (self.crates.is_empty() || self.crates.iter().any(|g| g.matches(crate_name)))
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The user, created if missing.
    pub login: String,
    /// A label.
    pub name: String,
    /// Allowed actions; empty means all.
    pub scopes: Vec<EndpointScope>,
    /// Allowed crates; empty means all.
    pub crates: Vec<CrateGlob>,
    /// When it stops working.
    pub expires_at: Option<SystemTime>,
}

/// A token as its owner may see it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The public id.
    pub id: String,
    /// The label given at creation.
    pub name: String,
    /// Allowed actions.
    pub scopes: Vec<EndpointScope>,
    /// Allowed crates; empty means every crate.
    pub crates: Vec<CrateGlob>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// When it was last presented, if ever (recorded within about a second).
    pub last_used_at: Option<SystemTime>,
    /// The stage it uploads into, for a stage token.
    pub stage: Option<String>,
}

/// Why a store operation failed. The variants that a client caused map to
/// 4xx responses; [`StoreError::Backend`] is the store's own failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// That exact version (ignoring build metadata) exists.
    #[error("crate version `{name}@{version}` is already uploaded")]
    VersionExists {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// The crate exists under another spelling.
    #[error("crate was previously named `{existing}`, publish it under that name")]
    NameConflict {
        /// The existing spelling.
        existing: String,
    },
    /// The user does not own the crate.
    #[error("you are not an owner of crate `{name}`")]
    NotOwner {
        /// Crate name.
        name: String,
    },
    /// The token lacks the scope for this action.
    #[error("this token does not allow `{scope}` for crate `{name}`")]
    MissingScope {
        /// The missing scope.
        scope: EndpointScope,
        /// Crate name.
        name: String,
    },
    /// No such crate.
    #[error("crate `{name}` does not exist")]
    CrateNotFound {
        /// Crate name.
        name: String,
    },
    /// No such version.
    #[error("crate `{name}` has no version `{version}`")]
    VersionNotFound {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// No such user.
    #[error("user `{login}` does not exist")]
    UserNotFound {
        /// Login.
        login: String,
    },
    /// Dependencies that name no crate of this registry.
    #[error("no known crate named {}", .names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    UnknownDependencies {
        /// The missing names.
        names: Vec<String>,
    },
    /// The version is staged in an open stage.
    #[error(
        "crate version `{name}@{version}` is reserved by a staged release that has not been committed"
    )]
    VersionStaged {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// The version was staged with other bytes and discarded.
    #[error(
        "crate version `{name}@{version}` was staged with different content and discarded; it can only be published with those exact bytes, bump the version instead"
    )]
    VersionBurnt {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// No such stage, or not the caller's.
    #[error("staged release `{id}` does not exist")]
    StageNotFound {
        /// The stage id.
        id: String,
    },
    /// The stage was committed, aborted or expired.
    #[error("staged release `{id}` is {state}, not open")]
    StageNotOpen {
        /// The stage id.
        id: String,
        /// Its state.
        state: String,
    },
    /// A commit found problems; nothing changed.
    #[error("the staged release cannot be committed: {}", .problems.join("; "))]
    CommitRejected {
        /// One sentence per problem, each naming its crate.
        problems: Vec<String>,
    },
    /// No such release.
    #[error("release `{id}` does not exist")]
    ReleaseNotFound {
        /// The release id.
        id: String,
    },
    /// An outsider's crate depends on a companion.
    #[error(
        "crate `{dependency}` is a private part of `{parent}` and cannot be depended on by other crates; depend on `{parent}` instead"
    )]
    CompanionDependency {
        /// The companion depended on.
        dependency: String,
        /// Its parent.
        parent: String,
    },
    /// A companion version that does not fit the crate's recorded kind.
    #[error("crate `{name}` cannot be published this way: {reason}")]
    CompanionMismatch {
        /// Crate name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Owners of a companion are its parent's.
    #[error("crate `{name}` is owned with its parent `{parent}`; change the owners of `{parent}`")]
    OwnedWithParent {
        /// The companion.
        name: String,
        /// Its parent.
        parent: String,
    },
    /// Removing the last owner would orphan the crate.
    #[error("cannot remove every owner of crate `{name}`")]
    LastOwner {
        /// Crate name.
        name: String,
    },
    /// Another server owns the data directory.
    #[error("another `cargo convoy serve` is using data directory `{}`", .dir.display())]
    Locked {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The registry's metadata.
///
/// What every implementation guarantees, and what the server relies on:
///
/// - **Atomic and durable**: each mutating method is one transaction,
///   durable before it returns `Ok`; on error nothing changed.
/// - **Per-crate serialization**: writes that touch one crate (publish,
///   stage, commit, yank, owners) are serialized, so racing publishes of one
///   version give exactly one success, and an index file is never rendered
///   from a stale set of versions. SQLite gets this from its single writer;
///   PostgreSQL from `pg_advisory_xact_lock` on the crate's canonical name,
///   taken in name order.
/// - **Read-your-writes, across processes**: once a mutation has returned,
///   every later [`Store::index_file`] call (from any node sharing the
///   backend) reflects it. A release commit or yank becomes visible for all
///   its crates at once, never partly.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The index file of a crate by any spelling of its name, or `None`.
    async fn index_file(&self, name: &str) -> StoreResult<Option<IndexFile>>;

    /// Runs every check of [`Store::publish`] (or of [`Store::stage_version`]
    /// into `stage`) without writing, so a doomed upload is refused before
    /// its blob is stored.
    async fn check_publish(
        &self,
        version: &NewVersion,
        stage: Option<&str>,
    ) -> StoreResult<PublishOutcome>;

    /// Publishes a version: checks ownership, scopes, name conflicts, version
    /// uniqueness and dependencies, then records the version and rewrites the
    /// crate's index file in one transaction.
    async fn publish(&self, version: NewVersion) -> StoreResult<PublishOutcome>;

    /// Sets or clears `yanked` on a version, as `actor`.
    async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
        actor: UserId,
    ) -> StoreResult<()>;

    /// The checksum of a version's `.crate`, for downloads. Counts the
    /// download.
    async fn download(&self, name: &str, version: &str) -> StoreResult<Option<String>>;

    /// The owners of a crate.
    async fn owners(&self, name: &str) -> StoreResult<Vec<Owner>>;

    /// Adds owners, as `actor`.
    async fn add_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()>;

    /// Removes owners, as `actor`.
    async fn remove_owners(&self, name: &str, logins: &[String], actor: UserId) -> StoreResult<()>;

    /// One page of crates whose name or description contains `query`, and
    /// the total count.
    async fn search(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<SearchHit>, u64)>;

    /// The token that `presented` is, if it is valid and unexpired. The
    /// comparison is constant-time; see [`token`](TokenSecret).
    async fn authenticate(&self, presented: &str) -> StoreResult<Option<AuthenticatedToken>>;

    /// Creates a token (and its user if needed) and returns the only copy of
    /// its secret.
    async fn create_token(&self, token: NewToken) -> StoreResult<TokenSecret>;

    /// The id of the user `login`, if there is one.
    async fn user_id(&self, login: &str) -> StoreResult<Option<UserId>>;

    /// The tokens of `user`, stage tokens included, without secrets.
    async fn tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>>;

    /// Revokes the token `id` of `user`, and every stage token opened with
    /// it; `false` when `user` has no such token.
    async fn revoke_token(&self, user: UserId, id: &str) -> StoreResult<bool>;

    /// The checksum of every blob that an index line or a staged version
    /// (committed, open or past its expiry but not yet discarded) refers to.
    /// [`sweep_orphans`] keeps these.
    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>>;

    /// How many times a version was downloaded.
    async fn download_count(&self, name: &str, version: &str) -> StoreResult<Option<u64>>;

    /// Stages a version into the open stage `stage`: every publish rule
    /// applies, the version's slot is reserved, and readers see nothing.
    async fn stage_version(&self, version: NewVersion, stage: &str) -> StoreResult<PublishOutcome>;

    /// Opens a stage for `creator`, whose stage token gets the publish scopes
    /// and crate globs given; returns it with its token (the only copy).
    async fn create_stage(
        &self,
        creator: &AuthenticatedToken,
        ttl: Duration,
    ) -> StoreResult<(StageRecord, TokenSecret)>;

    /// A stage, whatever its state. Discards it first if it expired.
    async fn stage(&self, id: &str) -> StoreResult<Option<StageRecord>>;

    /// The open stages of `user`.
    async fn open_stages(&self, user: UserId) -> StoreResult<Vec<StageRecord>>;

    /// Moves an open stage's expiry to now + `ttl`.
    async fn extend_stage(&self, id: &str, ttl: Duration) -> StoreResult<StageRecord>;

    /// Validates the whole stage and publishes every version in one
    /// transaction, as `actor`; on any problem nothing changes.
    async fn commit_stage(&self, id: &str, actor: UserId) -> StoreResult<Release>;

    /// Discards an open stage.
    async fn abort_stage(&self, id: &str) -> StoreResult<StageRecord>;

    /// Discards every open stage past its expiry; returns how many.
    async fn expire_stages(&self) -> StoreResult<usize>;

    /// The index file of `name` as the stage sees it: published versions
    /// plus the ones staged in it. `None` when neither exists.
    async fn stage_index_file(&self, stage: &str, name: &str) -> StoreResult<Option<Bytes>>;

    /// The checksum of a version visible in the stage's view.
    async fn stage_download(
        &self,
        stage: &str,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<String>>;

    /// A committed release.
    async fn release(&self, id: &str) -> StoreResult<Option<Release>>;

    /// Yanks or restores every version of a release in one transaction, as
    /// `actor`, who must own every crate.
    async fn yank_release(&self, id: &str, yanked: bool, actor: UserId) -> StoreResult<Release>;

    /// Takes one publish from `user`'s bucket, or says how long until one is
    /// available. The bucket lives where every node sees it.
    async fn take_publish_token(
        &self,
        user: UserId,
        limit: RateLimit,
    ) -> StoreResult<Result<(), Duration>>;

    /// Writes everything buffered (download counts). Called periodically
    /// and when the server stops, so no count is lost on SIGTERM.
    async fn flush(&self) -> StoreResult<()>;
    // --- Browsing, for the web UI (`convoy-web`). Read-only views of
    // published data: staged, aborted and expired versions never appear.

    /// A crate with its published versions and owners, or `None` when it
    /// has no published version.
    async fn crate_details(&self, name: &str) -> StoreResult<Option<CrateDetails>>;

    /// The manifest metadata of a published version.
    async fn version_meta(&self, name: &str, version: &str) -> StoreResult<Option<VersionMeta>>;

    /// Crates whose published, non-yanked versions depend on `name` in this
    /// registry, sorted by name.
    async fn reverse_dependencies(&self, name: &str) -> StoreResult<Vec<Dependent>>;

    /// Downloads of every version of `name` per day (days since the Unix
    /// epoch, UTC), for the last `days` days including today; days without
    /// downloads are left out.
    async fn daily_downloads(&self, name: &str, days: u32) -> StoreResult<Vec<(i64, u64)>>;

    /// The published crates `login` owns, or `None` when no such user.
    async fn user_crates(&self, login: &str) -> StoreResult<Option<Vec<CrateSummary>>>;

    /// The crates published most recently.
    async fn recent_crates(&self, limit: u32) -> StoreResult<Vec<CrateSummary>>;

    /// The crates with the most downloads.
    async fn most_downloaded(&self, limit: u32) -> StoreResult<Vec<CrateSummary>>;

    /// [`Store::search`], with downloads and dates for each hit.
    async fn search_summaries(
        &self,
        query: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<CrateSummary>, u64)>;

    /// Registry-wide counts.
    async fn totals(&self) -> StoreResult<Totals>;

    /// The key that signs web sessions: created once, kept in the store,
    /// so every node sharing the store signs and checks with the same key.
    async fn session_key(&self) -> StoreResult<Vec<u8>>;

    // --- Companions (`docs/SUBLIBRARIES.md`) ---------------------------------
    // A companion is recorded from `NewVersion::sublibrary_of` on publish.
    // The other methods enforce its rules on their own: search and listings
    // hide it, ownership checks use the parent's owners, dependencies from
    // outsiders are refused, and `set_yanked` on the parent cascades.

    /// The companions of `parent`, by name, for the parent's page.
    async fn companions(&self, parent: &str) -> StoreResult<Vec<String>>;
}

/// A stage as the store keeps it.
#[derive(Debug, Clone)]
pub struct StageRecord {
    /// `stg_…`.
    pub id: String,
    /// Its creator.
    pub user_id: UserId,
    /// The creator's login.
    pub login: String,
    /// Its state.
    pub state: StageState,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it expires (while open).
    pub expires_at: SystemTime,
    /// What was uploaded into it.
    pub crates: Vec<StagedCrate>,
}

/// How a download is answered.
pub enum Blob {
    /// The whole file, from memory.
    Bytes(Bytes),
    /// The file as it arrives from the object store.
    Stream {
        /// The bytes.
        body: futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
        /// Its length, when known.
        len: Option<u64>,
    },
    /// A presigned URL the client fetches itself (a 302).
    Redirect(String),
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Blob::Bytes({} bytes)", b.len()),
            Self::Stream { len, .. } => write!(f, "Blob::Stream({len:?})"),
            Self::Redirect(_) => f.write_str("Blob::Redirect"),
        }
    }
}

/// The `.crate` files, keyed by their lower-case sha256 (see
/// [`blob_key`]). Blobs are written once and never change; whether a blob
/// belongs to a published version is the metadata store's business, so a
/// blob store needs no compare-and-swap.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `cksum` durably before returning. Putting the same
    /// key twice is allowed and idempotent.
    async fn put(&self, cksum: &str, bytes: Bytes) -> StoreResult<()>;

    /// The bytes under `cksum`, if any.
    async fn get(&self, cksum: &str) -> StoreResult<Option<Bytes>>;

    /// How to answer a download of `cksum`: by default the bytes; object
    /// stores may stream or redirect.
    async fn fetch(&self, cksum: &str) -> StoreResult<Option<Blob>> {
        Ok(self.get(cksum).await?.map(Blob::Bytes))
    }

    /// Deletes every blob not in `keep` whose last write is older than
    /// `cutoff`, and returns how many went. A `put` that races with the
    /// sweep must either finish before the blob's age is checked (so it is
    /// young and kept) or write it again afterwards.
    async fn sweep(&self, keep: &HashSet<String>, cutoff: SystemTime) -> StoreResult<usize>;
}

/// The one layout of blob keys, shared by every blob store:
/// `ab/abcdef….crate` for a valid lower-case sha256, an error otherwise.
pub fn blob_key(cksum: &str) -> StoreResult<String> {
    let valid = cksum.len() == 64
        && cksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(StoreError::backend(std::io::Error::other(format!(
            "invalid blob key `{cksum}`"
        ))));
    }
    Ok(format!("{}/{cksum}.crate", &cksum[..2]))
}

/// Deletes blobs that nothing refers to: those of losing concurrent
/// publishes, refused uploads and discarded stages.
///
/// Crash-safe by ordering: the references are read first, and only blobs
/// written more than `grace` before that read can go. A publish writes its
/// blob and then commits within one request, so with `grace` longer than any
/// request can last, a blob not referenced at the read and older than the
/// cutoff can never be referenced later (a new upload of the same bytes
/// rewrites it, which makes it young again). Killing the sweep at any point
/// leaves only blobs that a later sweep removes.
pub async fn sweep_orphans(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    grace: Duration,
) -> StoreResult<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let keep = store.referenced_blobs().await?;
    blobs.sweep(&keep, cutoff).await
}
