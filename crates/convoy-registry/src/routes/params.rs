//! Path parameters, validated before a handler looks at them.
//!
//! A route parameter is whatever a client put in the URL: any length, any
//! character after percent-decoding. Each is checked here first, so no
//! handler slices, stores or quotes raw client text; what is quoted back is
//! cut and escaped by [`quote`].

use convoy_protocol::CrateName;
use convoy_protocol::text::quote;

use crate::ApiError;

/// The crate named in a path, or 404: a name that breaks crates.io's rules
/// cannot name a crate here, so "does not exist" is the truth.
pub(crate) fn crate_name(raw: &str) -> Result<CrateName, ApiError> {
    CrateName::new(raw)
        .map_err(|_| ApiError::not_found(format!("crate `{}` does not exist", quote(raw))))
}

/// `crate@version` as errors show it, both parts quoted.
pub(crate) fn describe(name: &str, version: &str) -> String {
    format!("`{}@{}`", quote(name), quote(version))
}

/// A stage or release id (`stg_` and 16 hex digits), or 404.
pub(crate) fn stage_id(raw: &str) -> Result<&str, ApiError> {
    let valid = raw
        .strip_prefix("stg_")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(raw)
    } else {
        Err(ApiError::not_found(format!(
            "staged release `{}` does not exist",
            quote(raw)
        )))
    }
}

/// A token id as `GET /api/v1/me/tokens` lists it (12 hex digits), or 404.
pub(crate) fn token_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() == 12 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw)
    } else {
        Err(ApiError::not_found(format!(
            "token `{}` does not exist",
            quote(raw)
        )))
    }
}

/// The crate an index path names, if the path is exactly where cargo looks
/// for it; 404 for anything else.
pub(crate) fn index_file_name(path: &str) -> Result<CrateName, ApiError> {
    let last = path.rsplit('/').next().unwrap_or_default();
    let name = crate_name(last)?;
    if convoy_protocol::index::index_path(name.as_str()) != path {
        return Err(ApiError::not_found(format!(
            "crate `{name}` does not exist"
        )));
    }
    Ok(name)
}
