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
//!   streaming, so a gzip bomb stops at the limit;
//! - one gzip member and nothing but zero padding after the tar end marker:
//!   cargo's decoder stops at the first member, `tar xzf` does not, so
//!   anything after it is a second archive that a reviewer sees and cargo
//!   never builds;
//! - GNU long names and PAX headers are bounded before they are read, so an
//!   entry cannot make the checker buffer hundreds of megabytes;
//! - every name is UTF-8 and means one file everywhere: no duplicates, no two
//!   names equal but for case, nothing Windows strips, aliases or reserves
//!   (see `names.rs`).
//!
//! Entries are read raw, so the extension headers are parsed here with the
//! bounds above rather than by the `tar` crate, which would buffer them
//! whole. Names quoted in errors are cut and escaped by
//! [`convoy_protocol::text::quote`].
//!
//! [`inspect`] returns the manifest's package name and version, which the
//! server compares with the publish metadata.

#[cfg(any(feature = "builder", test))]
mod builder;
mod names;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use convoy_protocol::text::{quote, quote_at_most};

#[cfg(any(feature = "builder", test))]
pub use builder::TarballBuilder;

/// Size limits for one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarballLimits {
    /// Largest `.crate` file accepted, in bytes.
    pub max_compressed: u64,
    /// Largest total of unpacked bytes (headers and contents), in bytes.
    pub max_unpacked: u64,
    /// Longest entry path, GNU long names and PAX `path` included, in bytes.
    pub max_path_bytes: u64,
    /// Largest PAX extended header of one entry, in bytes.
    pub max_pax_bytes: u64,
}

impl Default for TarballLimits {
    /// crates.io's defaults: 10 MiB compressed, 512 MiB unpacked. Paths get
    /// 4 KiB, Linux's `PATH_MAX` (Windows stops at 260 characters without
    /// long-path support), and a PAX header 8 KiB, room for a path plus the
    /// usual time and owner records.
    fn default() -> Self {
        Self {
            max_compressed: 10 * 1024 * 1024,
            max_unpacked: 512 * 1024 * 1024,
            max_path_bytes: 4096,
            max_pax_bytes: 8192,
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
    /// Not a gzip-compressed tar archive, or cut short. The parser's message
    /// may quote the archive, so it is shortened and escaped.
    #[error(
        "crate file is not a valid gzip-compressed tar archive: {}",
        quote_at_most(&.0.to_string(), 200)
    )]
    Malformed(#[source] io::Error),
    /// Bytes after the first gzip member, which cargo never reads.
    #[error(
        "crate file has {extra} bytes after the end of its gzip stream; cargo would ignore them, other tools would not"
    )]
    SecondGzipMember {
        /// How many compressed bytes follow.
        extra: usize,
    },
    /// Something other than zero padding after the tar end-of-archive marker.
    #[error("crate file has data after the end of its tar archive")]
    DataAfterEnd,
    /// A GNU long name or PAX `path` over [`TarballLimits::max_path_bytes`].
    #[error("an entry's path is {size} bytes long, the maximum is {max}")]
    PathTooLong {
        /// The announced length.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A PAX header over [`TarballLimits::max_pax_bytes`].
    #[error("an entry's PAX header is {size} bytes, the maximum is {max}")]
    PaxTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A PAX record that changes how other readers see the entry.
    #[error("entry `{path}` has a PAX `{key}` record, which is not allowed in crate files")]
    UnsupportedPax {
        /// The entry's path.
        path: String,
        /// The record's key.
        key: String,
    },
    /// Extension headers that do not describe exactly one following entry:
    /// two long names, a long name and a PAX path, or one at the very end.
    #[error("crate file has ambiguous extension headers: {0}")]
    AmbiguousHeaders(&'static str),
    /// A path that is not UTF-8.
    #[error("entry `{path}` has a name that is not UTF-8")]
    NonUtf8Path {
        /// The path, lossily decoded and quoted.
        path: String,
    },
    /// The same path twice.
    #[error("entry `{path}` appears more than once in the crate file")]
    DuplicatePath {
        /// The path.
        path: String,
    },
    /// Two paths equal but for case.
    #[error(
        "entries `{first}` and `{second}` differ only by case and would overwrite each other on case-insensitive file systems"
    )]
    CaseCollision {
        /// The earlier path.
        first: String,
        /// The later path.
        second: String,
    },
    /// A name that Windows cannot hold, or holds as another name.
    #[error("entry `{path}` has {problem}")]
    UnportableName {
        /// The path.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
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
    // `bufread` consumes exactly the first member from the slice, so what is
    // left afterwards is what cargo would never see.
    let mut compressed: &[u8] = bytes;
    let decoder = LimitedReader {
        inner: flate2::bufread::GzDecoder::new(&mut compressed),
        remaining: limits.max_unpacked,
        exceeded: false,
    };
    let mut archive = tar::Archive::new(decoder);
    let mut seen = Seen::default();
    let mut manifests: Vec<(String, String)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(TarballError::Malformed)?
        .raw(true);
    let mut pending = Pending::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| limit_or_malformed(e, limits))?;
        if pending.take_extension(&mut entry, limits)? {
            continue;
        }
        let raw_path = pending.path(&entry)?;
        let pax = std::mem::take(&mut pending.pax);
        let path = std::str::from_utf8(&raw_path).map_err(|_| TarballError::NonUtf8Path {
            path: quote(&String::from_utf8_lossy(&raw_path)),
        })?;
        if raw_path.len() as u64 > limits.max_path_bytes {
            return Err(TarballError::PathTooLong {
                size: raw_path.len() as u64,
                max: limits.max_path_bytes,
            });
        }
        let rel = relative_path(path, &prefix)?;
        check_entry_type(&entry, path)?;
        check_pax(&entry, path, pax.as_deref())?;
        let is_manifest =
            !rel.is_empty() && !rel.contains('/') && rel.eq_ignore_ascii_case("cargo.toml");
        if is_manifest {
            // Several spellings of the manifest get their own error below.
            let mut contents = String::new();
            entry
                .read_to_string(&mut contents)
                .map_err(|e| limit_or_malformed(e, limits))?;
            manifests.push((rel.clone(), contents));
        } else if !rel.is_empty() {
            seen.insert(&rel, &prefix)?;
        }
        if !rel.is_empty() {
            seen.files.push(rel);
        }
    }
    if pending.is_pending() {
        return Err(TarballError::AmbiguousHeaders(
            "an extension header describes no entry",
        ));
    }
    // Past the end marker only zero padding may follow; reading it also
    // counts a bomb hidden there against the limit.
    let mut rest = archive.into_inner();
    if !only_zeros(&mut rest).map_err(|e| limit_or_malformed(e, limits))? {
        return Err(TarballError::DataAfterEnd);
    }
    drop(rest);
    if !compressed.is_empty() {
        return Err(TarballError::SecondGzipMember {
            extra: compressed.len(),
        });
    }

    let (manifest_path, contents) = match manifests.len() {
        0 => return Err(TarballError::MissingManifest),
        1 => manifests.remove(0),
        _ => {
            return Err(TarballError::TooManyManifests {
                paths: manifests
                    .into_iter()
                    .map(|(p, _)| format!("{prefix}/{}", quote(&p)))
                    .collect(),
            });
        }
    };
    if manifest_path != "Cargo.toml" {
        return Err(TarballError::IncorrectlyCasedManifest {
            path: format!("{prefix}/{}", quote(&manifest_path)),
        });
    }
    let manifest: ManifestToml = toml::from_str(&contents)
        .map_err(|e| TarballError::InvalidManifest(quote_at_most(&e.to_string(), 500)))?;
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
        files: seen.files,
        sublibrary_of,
    })
}

/// Every path seen so far, exactly and folded to lower case.
#[derive(Default)]
struct Seen {
    exact: HashSet<String>,
    folded: HashMap<String, String>,
    files: Vec<String>,
}

impl Seen {
    fn insert(&mut self, rel: &str, prefix: &str) -> Result<(), TarballError> {
        if !self.exact.insert(rel.to_owned()) {
            return Err(TarballError::DuplicatePath {
                path: format!("{prefix}/{}", quote(rel)),
            });
        }
        let folded = rel.to_lowercase();
        if let Some(first) = self.folded.get(&folded) {
            return Err(TarballError::CaseCollision {
                first: format!("{prefix}/{}", quote(first)),
                second: format!("{prefix}/{}", quote(rel)),
            });
        }
        self.folded.insert(folded, rel.to_owned());
        Ok(())
    }
}

/// GNU long-name and PAX headers read so far, waiting for their entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn is_pending(&self) -> bool {
        self.long_name.is_some() || self.pax.is_some()
    }

    /// Reads `entry` if it is an extension header, bounded before any byte
    /// is buffered; `true` when it was one.
    fn take_extension<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        limits: TarballLimits,
    ) -> Result<bool, TarballError> {
        use tar::EntryType as T;
        let header = entry.header();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let kind = header.entry_type();
        let size = header.entry_size().map_err(TarballError::Malformed)?;
        match kind {
            T::GNULongName if recognized => {
                if self.long_name.is_some() {
                    return Err(TarballError::AmbiguousHeaders(
                        "two GNU long names for one entry",
                    ));
                }
                // The stored name ends in a NUL.
                if size > limits.max_path_bytes.saturating_add(1) {
                    return Err(TarballError::PathTooLong {
                        size,
                        max: limits.max_path_bytes,
                    });
                }
                let mut name = read_bounded(entry, size, limits)?;
                while name.last() == Some(&0) {
                    name.pop();
                }
                self.long_name = Some(name);
                Ok(true)
            }
            T::XHeader if recognized => {
                if self.pax.is_some() {
                    return Err(TarballError::AmbiguousHeaders(
                        "two PAX headers for one entry",
                    ));
                }
                if size > limits.max_pax_bytes {
                    return Err(TarballError::PaxTooLarge {
                        size,
                        max: limits.max_pax_bytes,
                    });
                }
                self.pax = Some(read_bounded(entry, size, limits)?);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The path of the entry the pending headers describe.
    fn path<R: Read>(&mut self, entry: &tar::Entry<'_, R>) -> Result<Vec<u8>, TarballError> {
        let pax_path = match &self.pax {
            Some(pax) => {
                let mut found = None;
                for ext in tar::PaxExtensions::new(pax) {
                    let ext = ext.map_err(TarballError::Malformed)?;
                    if ext.key_bytes() == b"path" {
                        if found.is_some() {
                            return Err(TarballError::AmbiguousHeaders(
                                "two PAX paths for one entry",
                            ));
                        }
                        found = Some(ext.value_bytes().to_vec());
                    }
                }
                found
            }
            None => None,
        };
        match (self.long_name.take(), pax_path) {
            (Some(_), Some(_)) => Err(TarballError::AmbiguousHeaders(
                "both a GNU long name and a PAX path for one entry",
            )),
            (Some(name), None) | (None, Some(name)) => Ok(name),
            (None, None) => Ok(entry.header().path_bytes().into_owned()),
        }
    }
}

/// The body of an extension header whose size was already checked.
fn read_bounded<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    size: u64,
    limits: TarballLimits,
) -> Result<Vec<u8>, TarballError> {
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 * 1024));
    entry
        .take(size)
        .read_to_end(&mut buf)
        .map_err(|e| limit_or_malformed(e, limits))?;
    Ok(buf)
}

/// Reads `r` to its end; `false` at the first non-zero byte.
fn only_zeros(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
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

/// The path relative to `prefix/`, or an error when it escapes or cannot be
/// unpacked as itself everywhere. Empty and `.` segments are dropped, as
/// every unpacker does, so `a//b` and `a/./b` are `a/b` for the duplicate
/// check.
fn relative_path(raw: &str, prefix: &str) -> Result<String, TarballError> {
    let invalid = || TarballError::InvalidPath {
        path: quote(raw),
        prefix: prefix.to_owned(),
    };
    if raw.starts_with('/') {
        return Err(invalid());
    }
    if raw.contains('\\') {
        return Err(TarballError::UnportableName {
            path: quote(raw),
            problem: "a backslash, which Windows reads as a directory separator".to_owned(),
        });
    }
    let mut parts = raw.split('/').filter(|p| !p.is_empty() && *p != ".");
    if parts.next() != Some(prefix) {
        return Err(invalid());
    }
    let mut rel = Vec::new();
    for part in parts {
        if part == ".." {
            return Err(invalid());
        }
        if let Some(problem) = names::component_problem(part) {
            return Err(TarballError::UnportableName {
                path: quote(raw),
                problem,
            });
        }
        rel.push(part);
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
        T::GNULongLink => "long link name",
        T::XGlobalHeader => "global PAX header",
        T::GNUSparse => "sparse file",
        _ => "special",
    };
    Err(TarballError::UnexpectedEntryType {
        path: quote(path),
        kind,
    })
}

/// The PAX records of an entry: `size` must agree with the header, since
/// parsers that disagree on where an entry ends see different files, and
/// records that change how an entry is read (links, sparse maps, binary
/// names) are refused outright.
fn check_pax<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &str,
    pax: Option<&[u8]>,
) -> Result<(), TarballError> {
    let Some(pax) = pax else {
        return Ok(());
    };
    let header_size = entry.header().size().map_err(TarballError::Malformed)?;
    for ext in tar::PaxExtensions::new(pax) {
        let ext = ext.map_err(TarballError::Malformed)?;
        let key = ext.key_bytes();
        if key == b"size" {
            let value = String::from_utf8_lossy(ext.value_bytes()).into_owned();
            if value.trim().parse::<u64>().ok() != Some(header_size) {
                return Err(TarballError::SizeMismatch {
                    path: quote(path),
                    pax: quote(&value),
                    header: header_size,
                });
            }
        } else if key == b"linkpath" || key == b"hdrcharset" || key.starts_with(b"GNU.sparse") {
            return Err(TarballError::UnsupportedPax {
                path: quote(path),
                key: quote(&String::from_utf8_lossy(key)),
            });
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
