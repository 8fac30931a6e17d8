//! `PUT /api/v1/crates/new`, used by `cargo publish`.
//!
//! Everything is checked before anything is stored; then the blob is written
//! durably, and only then is the version committed. A failure at any step
//! leaves the index as it was.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use convoy_protocol::CrateName;
use convoy_protocol::api::PublishResponse;
use convoy_protocol::publish::{NewCrate, split_publish_body};
use convoy_protocol::scope::EndpointScope;
use convoy_protocol::text::quote;
use convoy_store::NewVersion;
use convoy_tarball::{TarballError, TarballLimits};
use sha2::{Digest, Sha256};

use crate::{ApiError, App};

/// crates.io's limit on version strings.
const MAX_VERSION_LENGTH: usize = 150;

pub(crate) async fn publish(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    let limits = app.settings.limits;
    // Four bytes of framing for each of the two parts.
    let max_body = limits.max_upload_bytes + limits.max_metadata_bytes + 8;
    let body = axum::body::to_bytes(body, usize::try_from(max_body).unwrap_or(usize::MAX))
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                ApiError::too_large(format!(
                    "upload is larger than the limit of {} bytes for a crate file",
                    limits.max_upload_bytes
                ))
            } else {
                // The body-read timeout, or the client went away.
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "the upload was not received in time",
                )
            }
        })?;
    let parts = split_publish_body(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if parts.metadata.len() as u64 > limits.max_metadata_bytes {
        return Err(ApiError::too_large(format!(
            "publish metadata is larger than the limit of {} bytes",
            limits.max_metadata_bytes
        )));
    }
    let meta: NewCrate = serde_json::from_slice(parts.metadata)
        .map_err(|e| ApiError::bad_request(format!("invalid publish metadata: {e}")))?;
    let name =
        CrateName::new(meta.name.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    validate_metadata(&meta)?;
    limits
        .index
        .check_metadata(&meta)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    let may_create = token.allows(EndpointScope::PublishNew, name.as_str());
    let may_update = token.allows(EndpointScope::PublishUpdate, name.as_str());
    if !may_create && !may_update {
        return Err(ApiError::forbidden(format!(
            "this token does not allow publishing crate `{name}`"
        )));
    }

    let tarball = body.slice_ref(parts.tarball);
    let manifest = check_tarball(&meta, tarball.clone(), limits).await?;
    if manifest.name != meta.name || manifest.version != meta.vers {
        return Err(ApiError::bad_request(format!(
            "metadata names `{}@{}` but the crate's Cargo.toml says `{}@{}`",
            meta.name, meta.vers, manifest.name, manifest.version
        )));
    }

    let cksum = hex::encode(Sha256::digest(&tarball));
    let version = NewVersion {
        line: meta.to_index_package(cksum.clone(), Some(convoy_protocol::index::now_timestamp())),
        description: meta.description.clone(),
        publisher: token.user_id,
        may_create,
        may_update,
        meta: convoy_store::VersionMeta {
            readme: meta.readme.clone(),
            readme_file: meta.readme_file.clone(),
            license: meta.license.clone(),
            repository: meta.repository.clone(),
            homepage: meta.homepage.clone(),
            documentation: meta.documentation.clone(),
            keywords: meta.keywords.clone(),
            categories: meta.categories.clone(),
            authors: meta.authors.clone(),
        },
        // With the extension off, a companion is an ordinary crate.
        sublibrary_of: manifest
            .sublibrary_of
            .clone()
            .filter(|_| app.settings.companions),
    };
    limits
        .index
        .check_line(&version.line)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Refuse before the blob is written, so a refused upload stores nothing;
    // the commit re-checks under the write lock.
    app.store
        .check_publish(&version, token.stage.as_deref())
        .await?;
    if let Some(limit) = app.settings.publish_rate {
        app.store
            .take_publish_token(token.user_id, limit)
            .await?
            .map_err(ApiError::rate_limited)?;
    }
    app.blobs.put(&cksum, tarball).await?;
    let outcome = match &token.stage {
        // A stage token stages instead of publishing.
        Some(stage) => app.store.stage_version(version, stage).await?,
        None => app.store.publish(version).await?,
    };
    tracing::info!(krate = %name, version = %meta.vers, user = %token.login, ?outcome, "published");
    Ok(axum::Json(PublishResponse::default()).into_response())
}

fn validate_metadata(meta: &NewCrate) -> Result<(), ApiError> {
    if meta.vers.len() > MAX_VERSION_LENGTH {
        return Err(ApiError::bad_request(format!(
            "version `{}` is longer than {MAX_VERSION_LENGTH} characters",
            quote(&meta.vers)
        )));
    }
    semver::Version::parse(&meta.vers).map_err(|e| {
        ApiError::bad_request(format!("invalid version `{}`, {e}", quote(&meta.vers)))
    })?;
    for dep in &meta.deps {
        CrateName::new(dep.name.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid dependency name: {e}")))?;
        let req = semver::VersionReq::parse(&dep.version_req).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid version requirement `{}` for dependency `{}`, {}",
                quote(&dep.version_req),
                dep.name,
                quote(&e.to_string())
            ))
        })?;
        if req == semver::VersionReq::STAR {
            return Err(ApiError::bad_request(format!(
                "wildcard (`*`) dependency constraints are not allowed, dependency `{}` needs a version",
                dep.name
            )));
        }
    }
    Ok(())
}

/// Whether reading the body failed on its size limit, rather than on a
/// timeout or a dropped connection.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Tarball checks decompress the whole upload, so they run off the async
/// workers.
async fn check_tarball(
    meta: &NewCrate,
    tarball: Bytes,
    limits: crate::Limits,
) -> Result<convoy_tarball::CrateManifest, ApiError> {
    let (name, vers) = (meta.name.clone(), meta.vers.clone());
    let limits = TarballLimits {
        max_compressed: limits.max_upload_bytes,
        max_unpacked: limits.max_unpacked_bytes,
        max_path_bytes: limits.max_path_bytes,
        max_pax_bytes: limits.max_pax_bytes,
    };
    let checked = tokio::task::spawn_blocking(move || {
        convoy_tarball::inspect(&name, &vers, &tarball, limits)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    checked.map_err(|e| match e {
        TarballError::TooLarge { .. } | TarballError::TooLargeUnpacked { .. } => {
            ApiError::too_large(e.to_string())
        }
        e => ApiError::bad_request(e.to_string()),
    })
}
