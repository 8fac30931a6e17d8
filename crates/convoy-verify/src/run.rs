//! Building every packaged crate from its `.crate`: the strategy of each,
//! the batches and lanes they are built in, and the cargo runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use convoy_package::PackagedCrate;
use convoy_workspace::process::{Cmd, ProcessError};
use sha2::{Digest, Sha256};

use crate::batch::{Resolution, compiles, resolve_alone};
use crate::cache::ResultCache;
use crate::consumer::{Planned, batch_consumer, consumer_dir, write_consumer};
use crate::{
    CargoFailure, Overlay, Step, Strategy, VerifyError, VerifyEvent, VerifyMode, VerifyOptions,
};

/// Verifies `packages` (in publish order: topological by normal and build
/// edges), stopping at the first failure.
///
/// Every package is resolved and built as a downstream user resolves it:
/// alone. To use both cores, plain libraries whose resolution alone equals
/// their resolution next to each other (same package versions, same
/// features, as `cargo tree` reports them, see [`crate::batch`]) are built in
/// one cargo invocation per such group; a package whose features or
/// versions would change in any company is built on its own. The overlay serves every package
/// from the start, so the order of builds does not change what they see;
/// only which failure is reported first, and a failed batch is therefore
/// rebuilt package by package, in publish order, to name the first one that
/// fails alone.
pub fn verify(
    packages: &[PackagedCrate],
    overlay: &Overlay,
    opts: &VerifyOptions,
    observer: &mut dyn FnMut(VerifyEvent),
) -> Result<(), VerifyError> {
    if opts.mode == VerifyMode::None {
        return Ok(());
    }
    // This run's locks were kept or renewed just before; what no run has
    // used for a week goes.
    crate::cache::prune(&opts.work_dir, crate::cache::KEPT_FOR);
    let mut planned = Vec::with_capacity(packages.len());
    for pkg in packages {
        let dir = unpack(pkg, &opts.work_dir)?;
        let shape = strategy(pkg, &dir, opts)?;
        planned.push(Planned {
            pkg,
            dir,
            strategy: shape.strategy,
            build_script: shape.build_script,
            proc_macro: shape.proc_macro,
        });
    }
    let mut run = Run {
        overlay,
        opts,
        observer,
        started: 0,
        total: packages.len(),
    };

    // Each library's graph alone, by its index in `planned`.
    let libraries: Vec<usize> = (0..planned.len())
        .filter(|i| planned[*i].strategy == Strategy::AsDependency)
        .collect();
    for i in &libraries {
        let pkg = planned[*i].pkg;
        write_consumer(&consumer_dir(pkg, opts), &[pkg], overlay, pkg)?;
    }
    let mut resolved: Vec<Option<Resolution>> = vec![None; planned.len()];
    if libraries.len() >= 2 || libraries.iter().any(|i| planned[*i].proc_macro) {
        let refs: Vec<&Planned<'_>> = libraries.iter().map(|i| &planned[*i]).collect();
        for (i, graph) in libraries.iter().zip(resolve_alone(&refs, overlay, opts)) {
            resolved[*i] = graph;
        }
    }
    // In check mode, a proc-macro that no other package of the release
    // builds is type-checked as the root of its unpacked copy, as
    // `cargo check --workspace` does with it: as a dependency it would be
    // compiled to a loadable library, and its own dependencies with it. One
    // that a sibling uses is compiled anyway, so it stays a dependency and
    // that build is shared.
    let unused: Vec<usize> = libraries
        .iter()
        .copied()
        .filter(|i| {
            opts.mode == VerifyMode::Check
                && planned[*i].proc_macro
                && !used_by_others(*i, &planned, &resolved)
        })
        .collect();
    for i in &unused {
        planned[*i].strategy = Strategy::Unpacked;
    }
    let candidates: Vec<(&Planned<'_>, &Resolution)> = planned
        .iter()
        .zip(&resolved)
        .filter(|(p, _)| p.strategy == Strategy::AsDependency)
        .filter_map(|(p, graph)| Some((p, graph.as_ref()?)))
        .collect();
    let batches = if candidates.len() >= 2 {
        crate::batch::batches(&candidates, overlay, opts)?
    } else {
        Vec::new()
    };
    let batched: Vec<bool> = planned
        .iter()
        .map(|p| batches.iter().flatten().any(|b| std::ptr::eq(*b, p)))
        .collect();
    // `-j 1` asks for one job at a time, which a second lane would double.
    let aside = if opts.jobs == Some(1) {
        Vec::new()
    } else {
        second_lane(&resolved, &unused, &batched, batches.len())
    };
    let step = match opts.mode {
        VerifyMode::Build => Step::Build,
        _ => Step::Check,
    };
    let lane_opts = VerifyOptions {
        target_dir: opts.work_dir.join("second-lane-target"),
        ..opts.clone()
    };
    let planned = &planned;
    std::thread::scope(|scope| {
        let lane = (!aside.is_empty()).then(|| {
            let (aside, lane_opts) = (&aside, &lane_opts);
            scope.spawn(move || {
                let mut done = Vec::new();
                for i in aside {
                    let start = Instant::now();
                    let result = build_alone(&planned[*i], overlay, lane_opts, step)
                        .map(|root| (root, start.elapsed()));
                    let failed = result.is_err();
                    done.push((*i, result));
                    if failed {
                        break;
                    }
                }
                done
            })
        });
        // The main lane: batches, then the rest in publish order.
        let mut failure: Option<(usize, VerifyError)> = None;
        for (n, batch) in batches.iter().enumerate() {
            if let Err(e) = run.batch(n, batch) {
                failure = Some((0, e));
                break;
            }
        }
        if failure.is_none() {
            for (i, p) in planned.iter().enumerate() {
                if batched[i] || aside.contains(&i) {
                    continue;
                }
                run.started(p.pkg);
                let start = Instant::now();
                match run.one(p) {
                    Ok(root) => run.finished(p, start.elapsed(), root, 1),
                    Err(e) => {
                        failure = Some((i, e));
                        break;
                    }
                }
            }
        }
        // The second lane's packages are reported once it is done, in
        // publish order; of two failures, the one earlier in publish order
        // (a batch counts as first) is the error.
        let done = match lane.map(|handle| handle.join()) {
            None => Vec::new(),
            Some(Ok(done)) => done,
            Some(Err(_)) => {
                return Err(VerifyError::Spawn {
                    command: format!("cargo {} in the second build lane", step.subcommand()),
                    source: std::io::Error::other("the worker thread panicked"),
                });
            }
        };
        for (i, result) in done {
            if failure.as_ref().is_some_and(|(first, _)| *first < i) {
                break;
            }
            let p = &planned[i];
            run.started(p.pkg);
            match result {
                Ok((root, duration)) => run.finished(p, duration, root, 1),
                Err(e) => {
                    failure = Some((i, e));
                    break;
                }
            }
        }
        match failure {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    })
}

/// The packages (indices into `planned`, in publish order) that are built
/// in a second cargo invocation running next to the first, in a target
/// directory of its own.
///
/// Cargo runs one invocation per target directory at a time, and an
/// invocation often ends on one long crate with a core idle. A package
/// whose build shares no unit with anything built in the main target
/// directory loses nothing by being built elsewhere: proc-macros that are
/// checked as roots (`unused`; their `syn` is checked with a proc-macro's
/// features, which no library asks for) and libraries built alone whose
/// graph has no node in common with any batch or with the libraries kept
/// in the main lane, while the second lane has fewer builds than the main
/// one (each batch counts as one). Packages without a resolved graph stay
/// in the main lane. Which lane a package takes changes only what is reused, never
/// what it is built against.
fn second_lane(
    resolved: &[Option<Resolution>],
    unused: &[usize],
    batched: &[bool],
    batches: usize,
) -> Vec<usize> {
    let mut main: std::collections::BTreeSet<&str> = resolved
        .iter()
        .zip(batched)
        .filter(|(_, batched)| **batched)
        .filter_map(|(graph, _)| graph.as_ref())
        .flatten()
        .map(String::as_str)
        .collect();
    // Builds in each lane so far, one per batch: a free package goes to
    // the lane with fewer, the main one on a tie.
    let mut in_main = batches;
    let mut aside: Vec<usize> = unused.to_vec();
    for (i, graph) in resolved.iter().enumerate() {
        if batched[i] || unused.contains(&i) {
            continue;
        }
        match graph {
            Some(graph)
                if aside.len() < in_main
                    && graph.iter().all(|node| !main.contains(node.as_str())) =>
            {
                aside.push(i);
            }
            Some(graph) => {
                main.extend(graph.iter().map(String::as_str));
                in_main += 1;
            }
            None => in_main += 1,
        }
    }
    aside.sort_unstable();
    aside
}

/// Builds `p` on its own by its strategy, with no events; returns the
/// directory cargo ran in.
fn build_alone(
    p: &Planned<'_>,
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
) -> Result<PathBuf, VerifyError> {
    if p.strategy == Strategy::AsDependency {
        let consumer = consumer_dir(p.pkg, opts);
        build_consumer(&consumer, &[p], overlay, opts, step, p.pkg)?;
        return Ok(consumer);
    }
    build_unpacked(p, overlay, opts, &[step], &mut |_| {})?;
    Ok(p.dir.clone())
}

/// Whether any other package of the release builds `planned[p]`: it is in
/// the resolved graph of another library alone (`resolved`, by index in
/// `planned`), or a package without such a graph depends on it at all.
fn used_by_others(p: usize, planned: &[Planned<'_>], resolved: &[Option<Resolution>]) -> bool {
    let pkg = planned[p].pkg;
    planned
        .iter()
        .zip(resolved)
        .enumerate()
        .any(|(other, (planned, graph))| {
            other != p
                && match graph {
                    Some(graph) => compiles(graph, &pkg.name, &pkg.version),
                    // Unresolved, or not a library: judge by its manifest.
                    None => planned.pkg.local_deps.contains(&pkg.name),
                }
        })
}

/// One verification run: the shared inputs and the event counter.
struct Run<'a, 'o> {
    overlay: &'a Overlay,
    opts: &'a VerifyOptions,
    observer: &'a mut (dyn FnMut(VerifyEvent) + 'o),
    started: usize,
    total: usize,
}

impl Run<'_, '_> {
    fn started(&mut self, pkg: &PackagedCrate) {
        (self.observer)(VerifyEvent::Started {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            index: self.started,
            total: self.total,
        });
        self.started += 1;
    }

    fn finished(&mut self, p: &Planned<'_>, duration: Duration, root: PathBuf, together: usize) {
        (self.observer)(VerifyEvent::Finished {
            name: p.pkg.name.clone(),
            version: p.pkg.version.clone(),
            duration,
            strategy: p.strategy,
            lockfile: root.join("Cargo.lock"),
            together,
        });
    }

    fn step(&self) -> Step {
        match self.opts.mode {
            VerifyMode::Build => Step::Build,
            _ => Step::Check,
        }
    }

    /// Builds `batch` as the dependencies of one consumer. If that fails,
    /// every member is built alone, in publish order, so the error names
    /// the first package that fails for its users (a batch can also fail
    /// where its members do not, say on two `links` of the same library).
    fn batch(&mut self, n: usize, batch: &[&Planned<'_>]) -> Result<(), VerifyError> {
        for p in batch {
            self.started(p.pkg);
        }
        let start = Instant::now();
        let dir = self.opts.work_dir.join(batch_consumer(n));
        let together = batch.len();
        match build_consumer(
            &dir,
            batch,
            self.overlay,
            self.opts,
            self.step(),
            batch[0].pkg,
        ) {
            Ok(()) => {
                let duration = start.elapsed();
                for p in batch {
                    self.finished(p, duration, dir.clone(), together);
                }
                Ok(())
            }
            Err(_) => {
                for p in batch {
                    let start = Instant::now();
                    let root = self.one(p)?;
                    self.finished(p, start.elapsed(), root, 1);
                }
                Ok(())
            }
        }
    }

    /// Builds one package by its strategy; returns the directory cargo ran
    /// in (where its lock file is).
    fn one(&mut self, p: &Planned<'_>) -> Result<PathBuf, VerifyError> {
        let (pkg, overlay, opts) = (p.pkg, self.overlay, self.opts);
        if p.strategy == Strategy::AsDependency {
            return build_alone(p, overlay, opts, self.step());
        }
        let mut steps = vec![self.step()];
        if opts.run_tests {
            steps.push(Step::Test);
        }
        let observer = &mut self.observer;
        build_unpacked(p, overlay, opts, &steps, &mut |step| {
            if step == Step::Test {
                observer(VerifyEvent::Testing {
                    name: pkg.name.clone(),
                    version: pkg.version.clone(),
                });
            }
        })?;
        Ok(p.dir.clone())
    }
}

/// Runs `steps` in the unpacked copy of `p`, in order (`before` is told
/// of each first), then checks that they left its sources as they were.
fn build_unpacked(
    p: &Planned<'_>,
    overlay: &Overlay,
    opts: &VerifyOptions,
    steps: &[Step],
    before: &mut dyn FnMut(Step),
) -> Result<(), VerifyError> {
    let (pkg, dir) = (p.pkg, &p.dir);
    let hashes = hash_tree(dir, UNPACKED_GENERATED)
        .map_err(|source| VerifyError::io(pkg, "hash", dir, source))?;
    for step in steps {
        before(*step);
        run_cargo(pkg, dir, overlay, opts, *step, true)?;
    }
    let after = hash_tree(dir, UNPACKED_GENERATED)
        .map_err(|source| VerifyError::io(pkg, "hash", dir, source))?;
    let changed = diff_trees(&hashes, &after);
    if !changed.is_empty() {
        return Err(VerifyError::SourcesModified {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            files: changed,
        });
    }
    Ok(())
}

/// Files cargo itself writes into an unpacked copy.
const UNPACKED_GENERATED: &[&str] = &["Cargo.lock"];

/// Files cargo itself writes into the sources it extracts from a `.crate`.
const EXTRACTED_GENERATED: &[&str] = &[".cargo-ok"];

/// What the packaged manifest says about how to build a package.
struct Shape {
    strategy: Strategy,
    build_script: bool,
    proc_macro: bool,
}

/// Picks [`Strategy::AsDependency`] for a library: a `[lib]` target, no
/// `[[bin]]`, no feature options (a dependency spec cannot say
/// `--all-features`) and no tests. Packaged manifests are normalized by
/// cargo and list their targets explicitly; one that does not is built
/// unpacked.
fn strategy(pkg: &PackagedCrate, dir: &Path, opts: &VerifyOptions) -> Result<Shape, VerifyError> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| VerifyError::io(pkg, "read", &path, source))?;
    let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
        // Cargo will say what is wrong with it.
        return Ok(Shape {
            strategy: Strategy::Unpacked,
            build_script: true,
            proc_macro: false,
        });
    };
    let build_script = dir.join("build.rs").exists()
        || manifest
            .get("package")
            .and_then(|p| p.get("build"))
            .is_some_and(|b| b.as_bool() != Some(false));
    let lib = manifest.get("lib").and_then(toml::Value::as_table);
    let proc_macro = lib.is_some_and(|lib| {
        ["proc-macro", "proc_macro"]
            .iter()
            .any(|key| lib.get(*key).and_then(toml::Value::as_bool) == Some(true))
    });
    let has_bins = manifest
        .get("bin")
        .is_some_and(|b| b.as_array().is_none_or(|a| !a.is_empty()));
    let options = opts.run_tests
        || opts.all_features
        || opts.no_default_features
        || !opts.features.is_empty();
    let strategy = if lib.is_some() && !has_bins && !options {
        Strategy::AsDependency
    } else {
        Strategy::Unpacked
    };
    Ok(Shape {
        strategy,
        build_script,
        proc_macro,
    })
}

/// Builds the consumer in `dir` whose dependencies are `members`, then
/// checks that no member's build script changed the sources cargo
/// extracted for it. A failure is reported as `blame`'s.
fn build_consumer(
    dir: &Path,
    members: &[&Planned<'_>],
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
    blame: &PackagedCrate,
) -> Result<(), VerifyError> {
    let output = run_cargo(blame, dir, overlay, opts, step, false)?;
    let scripted: Vec<&Planned<'_>> = members.iter().copied().filter(|p| p.build_script).collect();
    if scripted.is_empty() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    for p in scripted {
        let Some(root) = extracted_root(&stdout, p.pkg, overlay) else {
            // Cargo did not say where it built the package from; it
            // always does for a build script, so this is not expected.
            return Err(VerifyError::io(
                p.pkg,
                "find the extracted sources of",
                &p.pkg.path,
                std::io::Error::other("cargo reported no artifact of it"),
            ));
        };
        let expected = hash_archive(p.pkg)?;
        let found = hash_tree(&root, EXTRACTED_GENERATED)
            .map_err(|source| VerifyError::io(p.pkg, "hash", &root, source))?;
        let changed = diff_trees(&expected, &found);
        if !changed.is_empty() {
            return Err(VerifyError::SourcesModified {
                name: p.pkg.name.clone(),
                version: p.pkg.version.clone(),
                files: changed,
            });
        }
    }
    Ok(())
}

/// Where cargo extracted `pkg` from the overlay, from the
/// `compiler-artifact` message of its build script: its `package_id` names
/// the target registry (source replacement maps ids back) and the package.
fn extracted_root(messages: &str, pkg: &PackagedCrate, overlay: &Overlay) -> Option<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Message {
        reason: String,
        #[serde(default)]
        package_id: String,
        #[serde(default)]
        manifest_path: Option<PathBuf>,
    }
    let identity = overlay.identity();
    let source = if identity.is_crates_io() {
        "registry+https://github.com/rust-lang/crates.io-index".to_owned()
    } else {
        identity.index_url.trim_end_matches('/').to_owned()
    };
    let wanted = format!("#{}@{}", pkg.name, pkg.version);
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter(|m| {
            m.package_id.ends_with(&wanted)
                && m.package_id.trim_end_matches(&wanted).trim_end_matches('/') == source
        })
        .find_map(|m| m.manifest_path)
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// sha256 of every file in the `.crate`, by path relative to
/// `<name>-<version>/`.
fn hash_archive(pkg: &PackagedCrate) -> Result<BTreeMap<PathBuf, [u8; 32]>, VerifyError> {
    let err = |source| VerifyError::io(pkg, "read", &pkg.path, source);
    let file = std::fs::File::open(&pkg.path).map_err(err)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let top = PathBuf::from(format!("{}-{}", pkg.name, pkg.version));
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(err)?.into_owned();
        let Ok(rel) = path.strip_prefix(&top) else {
            continue;
        };
        let rel = rel.to_path_buf();
        let mut hasher = Sha256::new();
        std::io::copy(&mut entry, &mut hasher).map_err(err)?;
        out.insert(rel, hasher.finalize().into());
    }
    Ok(out)
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
        std::fs::remove_dir_all(&dir)
            .map_err(|source| VerifyError::io(pkg, "clean", &dir, source))?;
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|source| VerifyError::io(pkg, "create", work_dir, source))?;
    let file = std::fs::File::open(&pkg.path)
        .map_err(|source| VerifyError::io(pkg, "open", &pkg.path, source))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|source| VerifyError::io(pkg, "unpack", &pkg.path, source))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|source| VerifyError::io(pkg, "unpack", &pkg.path, source))?;
        let path = entry
            .path()
            .map_err(|source| VerifyError::io(pkg, "unpack", &pkg.path, source))?
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
            .map_err(|source| VerifyError::io(pkg, "unpack", &pkg.path, source))?;
    }
    let manifest = dir.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest)
        .map_err(|source| VerifyError::io(pkg, "read", &manifest, source))?;
    let mtime = std::fs::metadata(&manifest).and_then(|m| m.modified());
    text.push_str("\n[workspace]\n");
    std::fs::write(&manifest, text)
        .map_err(|source| VerifyError::io(pkg, "write", &manifest, source))?;
    // Keep the packaged mtime: a build script without `rerun-if` lines
    // reruns when any file of its package is newer than its last run, and
    // the copy is the same from one run to the next.
    if let Ok(mtime) = mtime {
        std::fs::File::options()
            .write(true)
            .open(&manifest)
            .and_then(|f| f.set_modified(mtime))
            .map_err(|source| VerifyError::io(pkg, "write", &manifest, source))?;
    }
    Ok(dir)
}

/// Resolves the `Cargo.lock` that `pkg` will ship with, against `overlay`:
/// the target registry's identity, and the checksums of the local packages
/// already in the overlay. Cargo's own `cargo package` would resolve plain
/// path dependencies on crates.io instead, which is how a sibling ends up
/// locked to a stranger's crate of the same name.
///
/// With `previous` (the workspace's `Cargo.lock`), cargo starts from it,
/// as `cargo package` does: what the workspace locked stays at its version
/// and only what it lacks (the siblings, which the workspace has as paths)
/// is resolved, with no index reads for the rest. Without it, everything
/// is resolved afresh.
///
/// The same package against the same overlay and previous lock gets the
/// lock of the last run that made one ([`crate::cache`]), so a rerun
/// packages the same bytes.
pub fn generate_lockfile(
    pkg: &PackagedCrate,
    overlay: &Overlay,
    opts: &VerifyOptions,
    previous: Option<&str>,
) -> Result<String, VerifyError> {
    let work_dir = opts.work_dir.join("lock");
    let dir = work_dir.join(format!("{}-{}", pkg.name, pkg.version));
    let step = if previous.is_some() {
        Step::Relock
    } else {
        Step::Lock
    };
    let cmd = cargo_command(&dir, overlay, opts, step, true);
    let cache = ResultCache::new(&opts.work_dir, "locks");
    let identity = cmd.identity();
    let inputs = [
        identity.as_str(),
        pkg.cksum.as_str(),
        previous.unwrap_or(""),
    ];
    if let Some(lock) = cache.get(&inputs) {
        return Ok(lock);
    }
    unpack(pkg, &work_dir)?;
    let lock = dir.join("Cargo.lock");
    if let Some(previous) = previous {
        std::fs::write(&lock, previous)
            .map_err(|source| VerifyError::io(pkg, "write", &lock, source))?;
    }
    finish(pkg, cmd, overlay, step)?;
    let text = std::fs::read_to_string(&lock)
        .map_err(|source| VerifyError::io(pkg, "read", &lock, source))?;
    cache.put(&inputs, &text);
    Ok(text)
}

fn run_cargo(
    pkg: &PackagedCrate,
    dir: &Path,
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
    unpacked: bool,
) -> Result<Output, VerifyError> {
    finish(
        pkg,
        cargo_command(dir, overlay, opts, step, unpacked),
        overlay,
        step,
    )
}

/// The cargo command for `step` in `dir`, against `overlay`.
fn cargo_command(
    dir: &Path,
    overlay: &Overlay,
    opts: &VerifyOptions,
    step: Step,
    unpacked: bool,
) -> Cmd {
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
    for (key, value) in &opts.env {
        cmd = cmd.env(key, value);
    }
    match step {
        Step::Lock => return cmd,
        Step::Relock => return cmd.args(["--format-version", "1"]),
        Step::Check | Step::Build | Step::Test => {}
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
    if !unpacked {
        // Diagnostics stay rendered on stderr; stdout carries the
        // artifact messages that say where cargo extracted each package.
        cmd = cmd.args(["--message-format", "json-render-diagnostics"]);
    }
    if unpacked && !opts.features.is_empty() {
        cmd = cmd.arg("--features").arg(opts.features.join(","));
    }
    if unpacked && opts.all_features {
        cmd = cmd.arg("--all-features");
    }
    if unpacked && opts.no_default_features {
        cmd = cmd.arg("--no-default-features");
    }
    cmd
}

fn finish(
    pkg: &PackagedCrate,
    cmd: Cmd,
    overlay: &Overlay,
    step: Step,
) -> Result<Output, VerifyError> {
    match cmd.output() {
        Ok(output) => Ok(output),
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
            // Machine-readable messages are for Convoy, not for the report.
            stdout: stdout
                .lines()
                .filter(|l| !l.starts_with('{'))
                .map(|l| format!("{l}\n"))
                .collect(),
            stderr,
            upstream: overlay.upstream_errors(),
        }))),
        Err(ProcessError::Spawn { command, source }) => Err(VerifyError::Spawn { command, source }),
    }
}

/// sha256 of every file under `dir` except the files cargo generates at its
/// root (`skip`), by relative path.
fn hash_tree(dir: &Path, skip: &[&str]) -> std::io::Result<BTreeMap<PathBuf, [u8; 32]>> {
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
            if skip.iter().any(|s| rel == Path::new(s)) {
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
