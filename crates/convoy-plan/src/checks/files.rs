//! The packaged file list: size, junk and secrets.

use convoy_workspace::Member;
use serde::Serialize;

use crate::checks::FileList;
use crate::diagnostic::{Code, Diagnostic};

/// crates.io's default upload limit. The check sums uncompressed sizes, so
/// it errs on the side of warning.
const MAX_PACKAGE_BYTES: u64 = 10 * 1024 * 1024;
/// A binary file above this size is probably a build artefact or data that
/// should not ship.
const LARGE_BINARY_BYTES: u64 = 1024 * 1024;

/// One file that `cargo package` would include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Path inside the package, `/`-separated.
    pub path: String,
    /// Size in bytes: on disk for `cargo package --list` (0 for files cargo
    /// generates, such as `Cargo.lock`), in the archive for a `.crate`.
    pub size: u64,
    /// Whether the start of the file holds a NUL byte.
    pub binary: bool,
}

/// How much of a file the binary sniff reads.
pub const SNIFF_BYTES: usize = 8192;

impl FileEntry {
    /// The entry of a file at `path` (inside the package, `/`-separated) of
    /// `size` bytes whose first bytes are `head`; it is binary when a NUL
    /// is among the first [`SNIFF_BYTES`], the same rule whether the file
    /// was read from disk or from a `.crate`.
    pub fn new(path: String, size: u64, head: &[u8]) -> Self {
        Self {
            path,
            size,
            binary: head[..head.len().min(SNIFF_BYTES)].contains(&0),
        }
    }
}

/// Why a path looks like a secret, if it does.
fn secret_reason(path: &str) -> Option<&'static str> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let lower = file.to_ascii_lowercase();
    if lower == ".env"
        || (lower.starts_with(".env.")
            && !lower.ends_with(".example")
            && !lower.ends_with(".sample"))
    {
        return Some("an environment file");
    }
    if [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return Some("a key or certificate");
    }
    if ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
        .iter()
        .any(|k| lower == *k || lower == format!("{k}.pub"))
    {
        return Some("an SSH key");
    }
    if lower == "credentials.toml" || lower == ".npmrc" || lower == ".netrc" || lower == ".pypirc" {
        return Some("a credentials file");
    }
    None
}

/// Why a path looks like junk, if it does.
fn junk_reason(path: &str) -> Option<&'static str> {
    let mut parts = path.split('/');
    let file = path.rsplit('/').next().unwrap_or(path);
    if parts.any(|p| p == "target") {
        return Some("build output under `target/`");
    }
    if path.split('/').any(|p| p == "node_modules") {
        return Some("`node_modules/`");
    }
    if matches!(file, ".DS_Store" | "Thumbs.db") || file.ends_with(".swp") || file.ends_with('~') {
        return Some("editor or OS litter");
    }
    None
}

pub(super) fn check(m: &Member, list: &FileList, out: &mut Vec<Diagnostic>) {
    let name = Some(m.name.as_str());
    let files = match list {
        Ok(files) => files,
        Err(reason) => {
            out.push(Diagnostic::new(
                Code::FileListUnavailable,
                name,
                format!("could not list the files of `{}`, {reason}", m.name),
                format!("run `cargo package --list -p {}` to see why", m.name),
            ));
            return;
        }
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > MAX_PACKAGE_BYTES {
        out.push(Diagnostic::new(
            Code::PackageTooLarge,
            name,
            format!(
                "`{}` packages {} MiB of files, crates.io refuses `.crate` files over 10 MiB",
                m.name,
                total / (1024 * 1024)
            ),
            "exclude large files with `package.exclude` or `package.include`",
        ));
    }
    for f in files {
        if let Some(why) = secret_reason(&f.path) {
            out.push(Diagnostic::new(
                Code::PackagedSecret,
                name,
                format!("`{}` would be published and looks like {why}", f.path),
                "remove it, or leave it out with `package.exclude`; rotate it if it was ever published",
            ));
        } else if let Some(why) = junk_reason(&f.path) {
            out.push(Diagnostic::new(
                Code::PackagedJunk,
                name,
                format!("`{}` would be published and looks like {why}", f.path),
                "leave it out with `package.exclude` or `.gitignore`",
            ));
        } else if f.binary && f.size > LARGE_BINARY_BYTES {
            out.push(Diagnostic::new(
                Code::LargeBinaryFile,
                name,
                format!("`{}` is a {} KiB binary file", f.path, f.size / 1024),
                "leave it out with `package.exclude` unless the crate needs it at build time",
            ));
        }
    }
}
