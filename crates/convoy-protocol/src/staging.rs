//! Convoy's staged-release extension of the Web API (`docs/STAGING.md`).
//!
//! A stage collects uploads nobody else can see; a commit publishes all of
//! them in one transaction. Registries advertise the extension in
//! `config.json` ([`crate::index::StagingAdvert`]).

use serde::{Deserialize, Serialize};

/// Version of the staging extension this crate describes.
pub const STAGING_VERSION: u32 = 1;

/// The body of `POST {staging api}/stages` and `…/extend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRequest {
    /// How long the stage lives from now; the registry picks a default and
    /// caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Where a stage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    /// Accepting uploads.
    Open,
    /// Published as a release.
    Committed,
    /// Discarded by a client.
    Aborted,
    /// Discarded because it outlived `expires_at`.
    Expired,
}

/// A version inside a stage or a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedCrate {
    /// Crate name.
    pub name: String,
    /// Version.
    pub vers: String,
    /// sha256 of the `.crate`.
    pub cksum: String,
    /// Whether it is yanked (releases only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
}

/// A stage, as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// `stg_…`; also the id of the release it becomes.
    pub id: String,
    /// Its state.
    pub state: StageState,
    /// Login of its creator.
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// The staging view: `sparse+http(s)://…/stages/{id}/index/`.
    pub index: String,
    /// What has been uploaded into it so far.
    pub crates: Vec<StagedCrate>,
    /// The stage token: present only in the answer that created the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET {staging api}/stages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageList {
    /// The caller's open stages.
    pub stages: Vec<Stage>,
}

/// A committed stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The id of the stage it came from.
    pub id: String,
    /// Login of the committer.
    pub committed_by: String,
    /// RFC 3339.
    pub committed_at: String,
    /// Every version of the release.
    pub crates: Vec<StagedCrate>,
}
