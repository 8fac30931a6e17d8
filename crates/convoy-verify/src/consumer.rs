//! The packages of a run as planned, and the generated consumers that
//! build libraries the way a downstream user's build does.

use std::path::{Path, PathBuf};

use convoy_package::PackagedCrate;

use crate::overlay::toml_string;
use crate::{Overlay, Strategy, VerifyError, VerifyOptions};

/// A package, unpacked, with how it will be built.
pub(crate) struct Planned<'a> {
    pub(crate) pkg: &'a PackagedCrate,
    /// The unpacked copy, `<work_dir>/<name>-<version>/`.
    pub(crate) dir: PathBuf,
    pub(crate) strategy: Strategy,
    /// Whether it has a build script, whose writes into the sources must be
    /// looked for after the build.
    pub(crate) build_script: bool,
    /// Whether it is a proc-macro library, which a dependent must compile
    /// fully, for the host, before it can expand it.
    pub(crate) proc_macro: bool,
}

/// The package name of generated consumers; no registry crate is expected
/// to be called that.
const CONSUMER: &str = "convoy-verify-consumer";

/// The directory of the consumer shared by the `n`-th batch.
pub(crate) fn batch_consumer(n: usize) -> String {
    format!("batch-{n}.consumer")
}

/// `<work_dir>/<name>-<version>.consumer/`, the consumer of `pkg` alone.
pub(crate) fn consumer_dir(pkg: &PackagedCrate, opts: &VerifyOptions) -> PathBuf {
    opts.work_dir
        .join(format!("{}-{}.consumer", pkg.name, pkg.version))
}

/// Writes the consumer in `dir`: an empty library whose only dependencies
/// are `name = "=version"` from the target registry for each of `deps`,
/// with default features, as a downstream user would write them.
///
/// Files are rewritten only when their contents change, so that cargo's
/// fingerprints of an unchanged consumer survive between runs; the lock file
/// is always removed, because a user resolves a library afresh.
pub(crate) fn write_consumer(
    dir: &Path,
    deps: &[&PackagedCrate],
    overlay: &Overlay,
    blame: &PackagedCrate,
) -> Result<(), VerifyError> {
    std::fs::create_dir_all(dir).map_err(|source| VerifyError::io(blame, "create", dir, source))?;
    let registry = if overlay.identity().is_crates_io() {
        String::new()
    } else {
        format!(
            ", registry-index = {}",
            toml_string(&overlay.identity().index_url)
        )
    };
    let mut manifest = format!(
        "[package]\nname = \"{CONSUMER}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n[dependencies]\n"
    );
    for pkg in deps {
        manifest.push_str(&format!(
            "{} = {{ version = {}{registry} }}\n",
            toml_string(&pkg.name),
            toml_string(&format!("={}", pkg.version)),
        ));
    }
    manifest.push_str("\n[workspace]\n");
    write_if_changed(&dir.join("Cargo.toml"), &manifest, blame)?;
    write_if_changed(&dir.join("lib.rs"), "", blame)?;
    let lock = dir.join("Cargo.lock");
    match std::fs::remove_file(&lock) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(VerifyError::io(blame, "remove", &lock, source)),
    }
}

fn write_if_changed(path: &Path, text: &str, blame: &PackagedCrate) -> Result<(), VerifyError> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| VerifyError::io(blame, "write", path, source))
}
