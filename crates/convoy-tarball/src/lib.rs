//! Checks an uploaded `.crate` file before a registry stores it.
//!
//! A registry that unpacks or serves a tarball inherits every trick hidden in
//! it, so the rules are crates.io's (`crates_io_tarball`), plus the 2025
//! lesson from tar parser differentials:
//!
//! - every path sits under `name-version/`, with no `..` and no absolute path,
//!   so extracting one crate can never write over another;
//! - only regular files and directories: links and devices are what turn an
//!   extraction into an arbitrary write;
//! - a PAX `size` record must agree with the header's size, because parsers
//!   that disagree on where an entry ends see different files;
//! - exactly one `Cargo.toml` at the package root, spelled that way;
//! - size limits on both the compressed and the unpacked bytes, checked while
//!   streaming, so a gzip bomb stops at the limit.
//!
//! [`inspect`] returns the manifest's package name and version, which the
//! server compares with the publish metadata.

#[cfg(any(feature = "builder", test))]
mod builder;

use std::io::{self, Read};
use std::path::{Component, Path};

#[cfg(any(feature = "builder", test))]
pub use builder::TarballBuilder;

/// Size limits for one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarballLimits {
    /// Largest `.crate` file accepted, in bytes.
    pub max_compressed: u64,
    /// Largest total of unpacked bytes (headers and contents), in bytes.
    pub max_unpacked: u64,
}

impl Default for TarballLimits {
    /// crates.io's defaults: 10 MiB compressed, 512 MiB unpacked.
    fn default() -> Self {
        Self {
            max_compressed: 10 * 1024 * 1024,
            max_unpacked: 512 * 1024 * 1024,
        }
    }
}

/// Why a `.crate` file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarballError {
    /// Over [`TarballLimits::max_compressed`].
    #[error("crate file is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Over [`TarballLimits::max_unpacked`].
    #[error("crate file unpacks to more than {max} bytes")]
    TooLargeUnpacked {
        /// The limit.
        max: u64,
    },
    /// Not a gzip-compressed tar archive, or cut short.
    #[error("crate file is not a valid gzip-compressed tar archive: {0}")]
    Malformed(#[source] io::Error),
    /// A path outside `name-version/`, with `..`, or absolute.
    #[error("invalid path `{path}` in crate file, every path must be inside `{prefix}/`")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// The required prefix.
        prefix: String,
    },
    /// A symlink, hard link, device or other special entry.
    #[error(
        "unexpected {kind} entry `{path}` in crate file, only regular files and directories are allowed"
    )]
    UnexpectedEntryType {
        /// The offending path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// PAX and ustar disagree about an entry's size.
    #[error("entry `{path}` has a PAX size of {pax} bytes but a header size of {header} bytes")]
    SizeMismatch {
        /// The offending path.
        path: String,
        /// The PAX `size` record.
        pax: String,
        /// The header's size field.
        header: u64,
    },
    /// No `Cargo.toml` at the package root.
    #[error("crate file has no `Cargo.toml` at its root")]
    MissingManifest,
    /// Several `Cargo.toml`s that differ only by case.
    #[error("crate file has more than one `Cargo.toml`: {}", .paths.join(", "))]
    TooManyManifests {
        /// Every candidate found.
        paths: Vec<String>,
    },
    /// `CARGO.TOML` and friends.
    #[error("manifest `{path}` must be spelled `Cargo.toml`")]
    IncorrectlyCasedManifest {
        /// The offending path.
        path: String,
    },
    /// The manifest is not TOML, or lacks `[package]` name and version.
    #[error("`Cargo.toml` in crate file is invalid: {0}")]
    InvalidManifest(String),
}

/// What the server needs from a checked `.crate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateManifest {
    /// `package.name`.
    pub name: String,
    /// `package.version`.
    pub version: String,
    /// Paths of every entry, relative to the package root.
    pub files: Vec<String>,
    /// `[package.metadata.convoy] sublibrary-of`: the parent this crate is
    /// a companion of (see `docs/SUBLIBRARIES.md`).
    pub sublibrary_of: Option<String>,
}

#[derive(serde::Deserialize)]
struct ManifestToml {
    package: Option<PackageToml>,
}

#[derive(serde::Deserialize)]
struct PackageToml {
    name: String,
    version: Option<toml::Value>,
    metadata: Option<toml::Value>,
}

/// Checks `bytes` as the `.crate` of `name` `version` and reads its manifest.
/// The caller still compares the manifest's name and version with the upload's
/// metadata, since only it knows how to report that mismatch.
pub fn inspect(
    name: &str,
    version: &str,
    bytes: &[u8],
    limits: TarballLimits,
) -> Result<CrateManifest, TarballError> {
    let size = bytes.len() as u64;
    if size > limits.max_compressed {
        return Err(TarballError::TooLarge {
            size,
            max: limits.max_compressed,
        });
    }
    let prefix = format!("{name}-{version}");
    let decoder = LimitedReader {
        inner: flate2::read::GzDecoder::new(bytes),
        remaining: limits.max_unpacked,
        exceeded: false,
    };
    let mut archive = tar::Archive::new(decoder);
    let mut files = Vec::new();
    let mut manifests: Vec<(String, String)> = Vec::new();
    let mut entries = archive.entries().map_err(TarballError::Malformed)?;
    loop {
        let entry = match entries.next() {
            None => break,
            Some(Ok(entry)) => entry,
            Some(Err(e)) => return Err(limit_or_malformed(e, limits)),
        };
        let mut entry = entry;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = relative_path(&raw_path, &prefix)?;
        check_entry_type(&entry, &raw_path)?;
        check_pax_size(&mut entry, &raw_path)?;
        if !rel.is_empty() && !rel.contains('/') && rel.eq_ignore_ascii_case("cargo.toml") {
            let mut contents = String::new();
            entry
                .read_to_string(&mut contents)
                .map_err(|e| limit_or_malformed(e, limits))?;
            manifests.push((rel.clone(), contents));
        }
        if !rel.is_empty() {
            files.push(rel);
        }
    }
    // Drain whatever trails the last entry, so a bomb hidden after the end
    // marker still counts against the limit.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| limit_or_malformed(e, limits))?;

    let (path, contents) = match manifests.len() {
        0 => return Err(TarballError::MissingManifest),
        1 => manifests.remove(0),
        _ => {
            return Err(TarballError::TooManyManifests {
                paths: manifests
                    .into_iter()
                    .map(|(p, _)| format!("{prefix}/{p}"))
                    .collect(),
            });
        }
    };
    if path != "Cargo.toml" {
        return Err(TarballError::IncorrectlyCasedManifest {
            path: format!("{prefix}/{path}"),
        });
    }
    let manifest: ManifestToml =
        toml::from_str(&contents).map_err(|e| TarballError::InvalidManifest(e.to_string()))?;
    let package = manifest
        .package
        .ok_or_else(|| TarballError::InvalidManifest("missing `[package]`".into()))?;
    let version = match package.version {
        Some(toml::Value::String(v)) => v,
        // Packaged manifests have inheritance resolved; a missing version
        // means 0.0.0 since cargo 1.75.
        None => "0.0.0".to_owned(),
        Some(_) => {
            return Err(TarballError::InvalidManifest(
                "`package.version` is not a string".into(),
            ));
        }
    };
    let sublibrary_of = package
        .metadata
        .as_ref()
        .and_then(|m| m.get("convoy"))
        .and_then(|c| c.get(convoy_protocol::companion::SUBLIBRARY_OF))
        .and_then(toml::Value::as_str)
        .map(str::to_owned);
    Ok(CrateManifest {
        name: package.name,
        version,
        files,
        sublibrary_of,
    })
}

fn limit_or_malformed(e: io::Error, limits: TarballLimits) -> TarballError {
    if is_limit_error(&e) {
        TarballError::TooLargeUnpacked {
            max: limits.max_unpacked,
        }
    } else {
        TarballError::Malformed(e)
    }
}

/// The path relative to `prefix/`, or an error when it escapes.
fn relative_path(raw: &str, prefix: &str) -> Result<String, TarballError> {
    let invalid = || TarballError::InvalidPath {
        path: raw.to_owned(),
        prefix: prefix.to_owned(),
    };
    let path = Path::new(raw);
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == prefix => {}
        _ => return Err(invalid()),
    }
    let mut rel = Vec::new();
    for component in components {
        match component {
            Component::Normal(part) => rel.push(part.to_str().ok_or_else(invalid)?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(invalid());
            }
        }
    }
    Ok(rel.join("/"))
}

fn check_entry_type<R: Read>(entry: &tar::Entry<'_, R>, path: &str) -> Result<(), TarballError> {
    use tar::EntryType as T;
    let kind = match entry.header().entry_type() {
        T::Regular | T::Continuous | T::Directory => return Ok(()),
        T::Symlink => "symlink",
        T::Link => "hard link",
        T::Char => "character device",
        T::Block => "block device",
        T::Fifo => "fifo",
        _ => "special",
    };
    Err(TarballError::UnexpectedEntryType {
        path: path.to_owned(),
        kind,
    })
}

fn check_pax_size<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<(), TarballError> {
    let header_size = entry.header().size().map_err(TarballError::Malformed)?;
    let Some(extensions) = entry.pax_extensions().map_err(TarballError::Malformed)? else {
        return Ok(());
    };
    for ext in extensions {
        let ext = ext.map_err(TarballError::Malformed)?;
        if ext.key_bytes() == b"size" {
            let pax = String::from_utf8_lossy(ext.value_bytes()).into_owned();
            if pax.trim().parse::<u64>().ok() != Some(header_size) {
                return Err(TarballError::SizeMismatch {
                    path: path.to_owned(),
                    pax,
                    header: header_size,
                });
            }
        }
    }
    Ok(())
}

const LIMIT_MESSAGE: &str = "convoy: unpacked size limit exceeded";

fn is_limit_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.to_string() == LIMIT_MESSAGE)
}

/// Counts decompressed bytes and fails once past the limit.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(io::Error::other(LIMIT_MESSAGE));
        }
        let n = self.inner.read(buf)?;
        match self.remaining.checked_sub(n as u64) {
            Some(left) => {
                self.remaining = left;
                Ok(n)
            }
            None => {
                self.exceeded = true;
                Err(io::Error::other(LIMIT_MESSAGE))
            }
        }
    }
}

#[cfg(test)]
mod tests;
