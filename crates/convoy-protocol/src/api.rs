//! Requests and responses of the Cargo Web API other than publish.
//!
//! Shapes follow what cargo 1.95 parses (`crates/crates-io/lib.rs`): yank
//! asserts `ok`, owner changes need both `ok` and `msg`, and search needs
//! `meta.total`.

use serde::{Deserialize, Serialize};

/// The error envelope cargo understands for any status code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// One entry per problem; cargo joins their `detail`s with `, `.
    pub errors: Vec<ErrorDetail>,
}

/// One error in an [`ErrorResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The sentence cargo shows to the user.
    pub detail: String,
}

impl ErrorResponse {
    /// An envelope holding one error.
    pub fn single(detail: impl Into<String>) -> Self {
        Self {
            errors: vec![ErrorDetail {
                detail: detail.into(),
            }],
        }
    }
}

/// The reply to a successful publish. Cargo prints the warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    /// Problems that did not stop the publish.
    pub warnings: PublishWarnings,
}

/// Warnings cargo knows how to print after a publish.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishWarnings {
    /// Category slugs the registry does not know.
    pub invalid_categories: Vec<String>,
    /// Badges the registry does not know.
    pub invalid_badges: Vec<String>,
    /// Anything else.
    pub other: Vec<String>,
}

/// The reply to yank and unyank; cargo asserts `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkResponse {
    /// Always true on success.
    pub ok: bool,
}

/// The reply to owner changes; cargo requires `msg` even for removals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnersChangeResponse {
    /// Always true on success.
    pub ok: bool,
    /// Printed by `cargo owner --add`.
    pub msg: String,
}

/// The body of `PUT`/`DELETE /api/v1/crates/{name}/owners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnersRequest {
    /// Logins to add or remove.
    pub users: Vec<String>,
}

/// The reply to `GET /api/v1/crates/{name}/owners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnersList {
    /// The owners.
    pub users: Vec<Owner>,
}

/// One owner of a crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Stable numeric id.
    pub id: u32,
    /// Login name.
    pub login: String,
    /// Display name; cargo prints it in parentheses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The reply to `GET /api/v1/crates?q=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// One page of matches.
    pub crates: Vec<SearchHit>,
    /// Totals across all pages.
    pub meta: SearchMeta,
}

/// One search match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Crate name.
    pub name: String,
    /// Highest non-yanked version, or the highest version if all are yanked.
    pub max_version: String,
    /// The newest version's description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Search totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchMeta {
    /// Matches across all pages; cargo prints "... and N crates more".
    pub total: u64,
}

/// One token in `GET /api/v1/me/tokens`, crates.io's shape: never the
/// secret, which exists in clear only in the reply that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The public id, used to revoke it.
    pub id: String,
    /// Its label.
    pub name: String,
    /// Allowed actions.
    pub endpoint_scopes: Vec<crate::scope::EndpointScope>,
    /// Allowed crate patterns; `null` means every crate.
    pub crate_scopes: Option<Vec<String>>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_at: String,
    /// When it stops working; `null` for never.
    pub expired_at: Option<String>,
    /// When it was last presented; `null` for never.
    pub last_used_at: Option<String>,
    /// The stage it uploads into, for a stage token (Convoy extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// The reply to `GET /api/v1/me/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenList {
    /// The caller's tokens, oldest first.
    pub api_tokens: Vec<ApiToken>,
}

/// The body of `PUT /api/v1/me/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiTokenRequest {
    /// The token to create.
    pub api_token: NewApiToken,
}

/// What a new token may do. Anything left out is inherited from the token
/// that creates it, which also bounds it: a token can only hand out what it
/// holds itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiToken {
    /// Its label.
    pub name: String,
    /// Allowed actions; `null` for the creating token's.
    #[serde(default)]
    pub endpoint_scopes: Option<Vec<crate::scope::EndpointScope>>,
    /// Allowed crate patterns; `null` for the creating token's.
    #[serde(default)]
    pub crate_scopes: Option<Vec<String>>,
    /// Expiry, `YYYY-MM-DDTHH:MM:SSZ`; `null` for the creating token's.
    #[serde(default)]
    pub expired_at: Option<String>,
}

/// The reply to `PUT /api/v1/me/tokens`: the listing plus the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiTokenResponse {
    /// The created token.
    pub api_token: CreatedApiToken,
}

/// A created token with its only copy of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    /// What listing shows.
    #[serde(flatten)]
    pub info: ApiToken,
    /// The secret, shown once.
    pub token: String,
}
