//! Building every packaged crate from its `.crate`, one cargo invocation
//! (one workspace, one feature resolution) per package.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use convoy_package::PackagedCrate;
use convoy_workspace::process::{Cmd, ProcessError};
use sha2::{Digest, Sha256};

use crate::overlay::toml_string;
use crate::{CargoFailure, Overlay, VerifyError};

/// How much of a build verification runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// Nothing: the packages are uploaded unverified (`--verify=none`).
    None,
    /// `cargo check`: type-checks every crate and its dependency graph, the
    /// fastest way to find missing files, features and items.
    #[default]
    Check,
    /// `cargo build`: like cargo's own verify, also runs codegen, so errors
    /// that only appear at link or monomorphization time are caught too.
    Build,
}

/// Options for [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Check, build or nothing.
    pub mode: VerifyMode,
    /// Also run `cargo test` from the packaged sources. Dev-dependencies on
    /// sibling crates may have been stripped by packaging, so tests that
    /// need them fail.
    pub run_tests: bool,
    /// Target directory shared by every package, so third-party
    /// dependencies are built once per run.
    pub target_dir: PathBuf,
    /// Where packages are unpacked, one fresh `<name>-<version>/` each.
    pub work_dir: PathBuf,
    /// `-j`.
    pub jobs: Option<u32>,
    /// `--features`, applied to every package.
    pub features: Vec<String>,
    /// `--all-features`, applied to every package.
    pub all_features: bool,
    /// `--no-default-features`, applied to every package.
    pub no_default_features: bool,
    /// Extra environment for the cargo invocations (a `CARGO_HOME` in
    /// tests, say).
    pub env: Vec<(OsString, OsString)>,
}

impl VerifyOptions {
    /// Check mode with default features, nothing else.
    pub fn new(target_dir: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: VerifyMode::Check,
            run_tests: false,
            target_dir: target_dir.into(),
            work_dir: work_dir.into(),
            jobs: None,
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            env: Vec::new(),
        }
    }
}

/// Progress, for the CLI's status lines and progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyEvent {
    /// A package's verification began (`   Verifying foo v1.2.0`).
    Started {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// 0-based position in the run.
        index: usize,
        /// Packages in the run.
        total: usize,
    },
    /// Its tests began, when [`VerifyOptions::run_tests`] is set.
    Testing {
        /// Package name.
        name: String,
        /// Version.
        version: String,
    },
    /// It verified.
    Finished {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// Wall time for this package.
        duration: Duration,
        /// How it was built.
        strategy: Strategy,
        /// The lock file cargo generated for it: local packages appear with
        /// the target registry as `source` and the checksum of their
        /// `.crate`.
        lockfile: PathBuf,
    },
}

/// How a package is built from its `.crate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// As the root of its unpacked copy (`--manifest-path
    /// <work_dir>/<name>-<version>/Cargo.toml`), like cargo's verify. Used
    /// for packages with binaries or a build script, with feature options,
    /// and when tests run.
    Unpacked,
    /// As the only dependency of a generated empty crate
    /// (`<work_dir>/<name>-<version>.consumer/`), so cargo fetches the
    /// `.crate` through the overlay and builds it exactly as a downstream
    /// user's build does. Its artifacts are then the ones dependents reuse,
    /// so each library is compiled once per run instead of twice. Used for
    /// plain libraries.
    AsDependency,
}

/// The cargo step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `cargo check`.
    Check,
    /// `cargo build`.
    Build,
    /// `cargo test`.
    Test,
    /// `cargo generate-lockfile`: the lock file shipped in the package.
    Lock,
}

impl Step {
    fn subcommand(self) -> &'static str {
        match self {
            Step::Check => "check",
            Step::Build => "build",
            Step::Test => "test",
            Step::Lock => "generate-lockfile",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo {}", self.subcommand())
    }
}

/// Verifies `packages` in the given order (topological by normal and build
/// edges, as the plan orders them), stopping at the first failure.
///
/// Each package is unpacked fresh and built by its own cargo invocation as
/// its own workspace, so features are resolved for that package alone, as a
/// downstream user resolves them; the shared target directory only shares
/// artifacts whose features and sources are identical.
pub fn verify(
    packages: &[PackagedCrate],
    overlay: &Overlay,
    opts: &VerifyOptions,
    observer: &mut dyn FnMut(VerifyEvent),
) -> Result<(), VerifyError> {
    if opts.mode == VerifyMode::None {
        return Ok(());
    }
    for (index, pkg) in packages.iter().enumerate() {
        let start = Instant::now();
        observer(VerifyEvent::Started {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            index,
            total: packages.len(),
        });
        let (strategy, root) = verify_one(pkg, overlay, opts, observer)?;
        observer(VerifyEvent::Finished {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            duration: start.elapsed(),
            strategy,
            lockfile: root.join("Cargo.lock"),
        });
    }
    Ok(())
}

fn verify_one(
    pkg: &PackagedCrate,
    overlay: &Overlay,
    opts: &VerifyOptions,
    observer: &mut dyn FnMut(VerifyEvent),
) -> Result<(Strategy, PathBuf), VerifyError> {
    let dir = unpack(pkg, &opts.work_dir)?;
    let step = match opts.mode {
        VerifyMode::Build => Step::Build,
        _ => Step::Check,
    };
    if strategy(pkg, &dir, opts)? == Strategy::AsDependency {
        let consumer = write_consumer(pkg, overlay, opts)?;
        run_cargo(pkg, &consumer, overlay, opts, step, false)?;
        return Ok((Strategy::AsDependency, consumer));
    }

    let before = hash_tree(&dir).map_err(|source| io_error(pkg, "hash", &dir, source))?;
    run_cargo(pkg, &dir, overlay, opts, step, true)?;
    if opts.run_tests {
        observer(VerifyEvent::Testing {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
        });
        run_cargo(pkg, &dir, overlay, opts, Step::Test, true)?;
    }

    let after = hash_tree(&dir).map_err(|source| io_error(pkg, "hash", &dir, source))?;
    let changed = diff_trees(&before, &after);
    if !changed.is_empty() {
        return Err(VerifyError::SourcesModified {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            files: changed,
        });
    }
    Ok((Strategy::Unpacked, dir))
}

/// Picks [`Strategy::AsDependency`] for a plain library: a `[lib]` target,
/// no `[[bin]]`, no build script (whose writes into the sources must be
/// checked in a copy we own), no feature options (a dependency spec cannot
/// say `--all-features`) and no tests. Packaged manifests are normalized by
/// cargo and list their targets explicitly; one that does not is built
/// unpacked.
fn strategy(
    pkg: &PackagedCrate,
    dir: &Path,
    opts: &VerifyOptions,
) -> Result<Strategy, VerifyError> {
    if opts.run_tests
        || opts.all_features
        || opts.no_default_features
        || !opts.features.is_empty()
        || dir.join("build.rs").exists()
    {
        return Ok(Strategy::Unpacked);
    }
    let path = dir.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).map_err(|source| io_error(pkg, "read", &path, source))?;
    let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
        // Cargo will say what is wrong with it.
        return Ok(Strategy::Unpacked);
    };
    let has_lib = manifest.get("lib").is_some_and(toml::Value::is_table);
    let has_bins = manifest
        .get("bin")
        .is_some_and(|b| b.as_array().is_none_or(|a| !a.is_empty()));
    let build_script = manifest
        .get("package")
        .and_then(|p| p.get("build"))
        .is_some_and(|b| b.as_bool() != Some(false));
    if has_lib && !has_bins && !build_script {
        Ok(Strategy::AsDependency)
    } else {
        Ok(Strategy::Unpacked)
    }
}

/// The package name of generated consumers; no registry crate is expected
/// to be called that.
const CONSUMER: &str = "convoy-verify-consumer";

/// Writes `<work_dir>/<name>-<version>.consumer/`: an empty library whose
/// only dependency is `name = "=version"` from the target registry, with
/// default features, as a downstream user would write it.
fn write_consumer(
    pkg: &PackagedCrate,
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Result<PathBuf, VerifyError> {
    let dir = opts
        .work_dir
        .join(format!("{}-{}.consumer", pkg.name, pkg.version));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| io_error(pkg, "clean", &dir, source))?;
    }
    std::fs::create_dir_all(&dir).map_err(|source| io_error(pkg, "create", &dir, source))?;
    let registry = if overlay.identity().is_crates_io() {
        String::new()
    } else {
        format!(
            ", registry-index = {}",
            toml_string(&overlay.identity().index_url)
        )
    };
    let manifest = format!(
        "[package]\nname = \"{CONSUMER}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n\
         [dependencies]\n{} = {{ version = {}{registry} }}\n\n[workspace]\n",
        toml_string(&pkg.name),
        toml_string(&format!("={}", pkg.version)),
    );
    let path = dir.join("Cargo.toml");
    std::fs::write(&path, manifest).map_err(|source| io_error(pkg, "write", &path, source))?;
    let lib = dir.join("lib.rs");
    std::fs::write(&lib, "").map_err(|source| io_error(pkg, "write", &lib, source))?;
    Ok(dir)
}

/// Unpacks the `.crate` into a fresh `<work_dir>/<name>-<version>/` and
/// makes it a workspace root of its own.
///
/// The packaged `Cargo.lock`, if any, stays: Convoy resolves it against the
/// overlay itself (see [`generate_lockfile`]), and the build is run with
/// `--locked` to prove it. The `.crate` file itself is never
/// modified.
fn unpack(pkg: &PackagedCrate, work_dir: &Path) -> Result<PathBuf, VerifyError> {
    let top = format!("{}-{}", pkg.name, pkg.version);
    let dir = work_dir.join(&top);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| io_error(pkg, "clean", &dir, source))?;
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|source| io_error(pkg, "create", work_dir, source))?;
    let file = std::fs::File::open(&pkg.path)
        .map_err(|source| io_error(pkg, "open", &pkg.path, source))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|source| io_error(pkg, "unpack", &pkg.path, source))?;
    for entry in entries {
        let mut entry = entry.map_err(|source| io_error(pkg, "unpack", &pkg.path, source))?;
        let path = entry
            .path()
            .map_err(|source| io_error(pkg, "unpack", &pkg.path, source))?
            .into_owned();
        // Every entry of a `.crate` lives under `<name>-<version>/`; anything
        // else is not something cargo would have produced.
        if !path.starts_with(&top) {
            return Err(VerifyError::BadArchive {
                name: pkg.name.clone(),
                version: pkg.version.clone(),
                path: pkg.path.clone(),
                entry: path.display().to_string(),
            });
        }
        // `unpack_in` refuses entries that would escape `work_dir`.
        entry
            .unpack_in(work_dir)
            .map_err(|source| io_error(pkg, "unpack", &pkg.path, source))?;
    }
    let manifest = dir.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest)
        .map_err(|source| io_error(pkg, "read", &manifest, source))?;
    text.push_str("\n[workspace]\n");
    std::fs::write(&manifest, text).map_err(|source| io_error(pkg, "write", &manifest, source))?;
    Ok(dir)
}

/// Resolves the `Cargo.lock` that `pkg` will ship with, against `overlay`:
/// the target registry's identity, and the checksums of the local packages
/// already in the overlay. Cargo's own `cargo package` would resolve plain
/// path dependencies on crates.io instead, which is how a sibling ends up
/// locked to a stranger's crate of the same name.
pub fn generate_lockfile(
    pkg: &PackagedCrate,
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Result<String, VerifyError> {
    let work_dir = opts.work_dir.join("lock");
    let dir = unpack(pkg, &work_dir)?;
    run_cargo(pkg, &dir, overlay, opts, Step::Lock, false)?;
    let lock = dir.join("Cargo.lock");
    std::fs::read_to_string(&lock).map_err(|source| io_error(pkg, "read", &lock, source))
}

fn run_cargo(
    pkg: &PackagedCrate,
    dir: &Path,
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
    feature_args: bool,
) -> Result<(), VerifyError> {
    let mut cmd = Cmd::cargo()
        .arg(step.subcommand())
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .args(["--color", "never"])
        .args(overlay.cargo_config_args())
        // Config discovery follows the current directory; run from the
        // unpacked package so the user's configuration around `work_dir`
        // applies, as it does to cargo's own verify.
        .cwd(dir);
    if step == Step::Lock {
        return finish(pkg, cmd, overlay, opts, step);
    }
    cmd = cmd.arg("--target-dir").arg(&opts.target_dir);
    // The packaged lock file was resolved against this same overlay, so the
    // build must agree with it; `--locked` turns any drift into an error
    // instead of a silent re-resolution.
    if dir.join("Cargo.lock").exists() {
        cmd = cmd.arg("--locked");
    }
    if let Some(jobs) = opts.jobs {
        cmd = cmd.arg("-j").arg(jobs.to_string());
    }
    if feature_args && !opts.features.is_empty() {
        cmd = cmd.arg("--features").arg(opts.features.join(","));
    }
    if feature_args && opts.all_features {
        cmd = cmd.arg("--all-features");
    }
    if feature_args && opts.no_default_features {
        cmd = cmd.arg("--no-default-features");
    }
    finish(pkg, cmd, overlay, opts, step)
}

fn finish(
    pkg: &PackagedCrate,
    mut cmd: Cmd,
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
) -> Result<(), VerifyError> {
    for (key, value) in &opts.env {
        cmd = cmd.env(key, value);
    }
    match cmd.output() {
        Ok(_) => Ok(()),
        Err(ProcessError::Failed {
            command,
            status,
            stdout,
            stderr,
        }) => Err(VerifyError::Cargo(Box::new(CargoFailure {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            step,
            command,
            status: status.to_string(),
            stdout,
            stderr,
            upstream: overlay.upstream_errors(),
        }))),
        Err(ProcessError::Spawn { command, source }) => Err(VerifyError::Spawn { command, source }),
    }
}

/// sha256 of every file under `dir` except the generated root `Cargo.lock`,
/// by relative path.
fn hash_tree(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, [u8; 32]>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            if rel == Path::new("Cargo.lock") {
                continue;
            }
            let mut hasher = Sha256::new();
            if kind.is_file() {
                let mut file = std::fs::File::open(&path)?;
                let mut buf = [0u8; 64 * 1024];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            } else if kind.is_symlink() {
                hasher.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
            }
            out.insert(rel, hasher.finalize().into());
        }
    }
    Ok(out)
}

/// Paths added, removed or changed between two [`hash_tree`]s.
fn diff_trees(
    before: &BTreeMap<PathBuf, [u8; 32]>,
    after: &BTreeMap<PathBuf, [u8; 32]>,
) -> Vec<String> {
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(path, hash)| before.get(*path) != Some(*hash))
        .map(|(path, _)| path.display().to_string())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|path| !after.contains_key(*path))
            .map(|path| path.display().to_string()),
    );
    changed.sort();
    changed
}

fn io_error(
    pkg: &PackagedCrate,
    action: &'static str,
    path: &Path,
    source: std::io::Error,
) -> VerifyError {
    VerifyError::Io {
        name: pkg.name.clone(),
        version: pkg.version.clone(),
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_diff_names_added_removed_and_changed_files() {
        let mut before = BTreeMap::new();
        before.insert(PathBuf::from("src/lib.rs"), [0; 32]);
        before.insert(PathBuf::from("gone.rs"), [0; 32]);
        let mut after = BTreeMap::new();
        after.insert(PathBuf::from("src/lib.rs"), [1; 32]);
        after.insert(PathBuf::from("new.rs"), [0; 32]);
        assert_eq!(
            diff_trees(&before, &after),
            vec!["gone.rs", "new.rs", "src/lib.rs"]
        );
        assert!(diff_trees(&before, &before).is_empty());
    }
}
