//! Running the user's cargo.
//!
//! Every subprocess goes through [`Cmd`] so that a failure always says which
//! command ran, how it exited and what it printed on stderr; a bare
//! "cargo failed" is useless when a release breaks in CI.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::RwLock;

/// What every cargo Convoy runs gets, whatever it runs: the user's
/// `--config` flags and `--offline`. Set once by the CLI from its own flags
/// ([`set_cargo_defaults`]), so no call site can forget them.
#[derive(Debug, Clone, Default)]
struct CargoDefaults {
    config: Vec<String>,
    offline: bool,
}

static CARGO_DEFAULTS: RwLock<CargoDefaults> = RwLock::new(CargoDefaults {
    config: Vec::new(),
    offline: false,
});

/// Makes every later [`Cmd::cargo`] pass `config` as `--config` flags and,
/// with `offline`, run cargo offline. Offline is passed as
/// `CARGO_NET_OFFLINE=true` rather than `--offline`, so that a command that
/// only talks to Convoy's local overlay registry can turn it off again with
/// `--config net.offline=false` (a flag would win over any config).
pub fn set_cargo_defaults(config: Vec<String>, offline: bool) {
    if let Ok(mut defaults) = CARGO_DEFAULTS.write() {
        *defaults = CargoDefaults { config, offline };
    }
}

/// A command line to run, captured rather than inherited.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started at all.
    #[error("could not run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status})\n--- stderr\n{}", stderr.trim_end())]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// The cargo to run: `$CARGO` when we run as a cargo subcommand (so the
/// toolchain the user picked with `cargo +nightly convoy` is honoured), else
/// `cargo` from `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    /// The user's cargo ([`cargo_program`]), with the defaults of
    /// [`set_cargo_defaults`].
    pub fn cargo() -> Self {
        let defaults = CARGO_DEFAULTS.read().map(|d| d.clone()).unwrap_or_default();
        let mut cmd = Self::new(cargo_program());
        for config in defaults.config {
            cmd = cmd.arg("--config").arg(config);
        }
        if defaults.offline {
            cmd = cmd.env("CARGO_NET_OFFLINE", "true");
        }
        // Convoy's overlay registry listens on 127.0.0.1, which a proxy the
        // user configured (`http.proxy`, `https_proxy`) cannot reach: the
        // cargo runs that read it must connect directly. curl applies
        // `no_proxy` to a configured proxy too.
        let no_proxy = std::env::var("no_proxy")
            .or_else(|_| std::env::var("NO_PROXY"))
            .unwrap_or_default();
        let no_proxy = if no_proxy.trim().is_empty() {
            "127.0.0.1".to_owned()
        } else {
            format!("{no_proxy},127.0.0.1")
        };
        cmd.env("no_proxy", no_proxy)
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs to completion and returns the output when the exit status is
    /// success.
    pub fn output(&self) -> Result<Output, ProcessError> {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let output = command.output().map_err(|source| ProcessError::Spawn {
            command: self.to_string(),
            source,
        })?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ProcessError::Failed {
                command: self.to_string(),
                status: output.status,
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// Everything that decides what the command does (program, arguments,
    /// directory, environment), as one string to key a cache of its
    /// results with. It may hold secrets from `--config`: hash it, never
    /// show or store it.
    pub fn identity(&self) -> String {
        format!("{:?}", (&self.program, &self.args, &self.cwd, &self.env))
    }

    /// Runs and returns stdout as text.
    pub fn stdout(&self) -> Result<String, ProcessError> {
        let output = self.output()?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.to_string_lossy())?;
        let mut after_config = false;
        for arg in &self.args {
            let mut arg = arg.to_string_lossy();
            // `--config registries.x.token=…` must not reach a message.
            if after_config
                && let Some((key, _)) = arg.split_once('=')
                && key.contains("token")
            {
                arg = format!("{key}=…").into();
            }
            after_config = arg == "--config";
            if arg.contains(' ') || arg.is_empty() {
                write!(f, " \"{arg}\"")?;
            } else {
                write!(f, " {arg}")?;
            }
        }
        Ok(())
    }
}

/// How many short cargo runs (`package --list`, lock files, `tree`) to keep
/// going at once. Runs that resolve take cargo's package-cache lock in
/// `$CARGO_HOME` for their resolution (cargo's own stderr then says
/// "Blocking waiting for file lock on package cache"), so those parts run
/// one at a time however many are started; what overlaps is each run's
/// start-up and its first index reads over the network. Several per core
/// keep that going; more than that only makes them queue.
pub fn short_run_workers(jobs: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    (cores.max(jobs.unwrap_or(1)) * 4).clamp(4, 16)
}

/// `f` over every item, on up to `workers` threads that each take the next
/// item as they finish the last, so one slow item holds up nobody else.
/// Results keep the items' order; an item whose call panicked gets `None`.
pub fn map_parallel<T, R, F>(items: &[T], workers: usize, f: F) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))).ok();
                    if let Ok(mut all) = results.lock() {
                        all[i] = result;
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod parallel_tests {
    use super::map_parallel;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..50).collect();
        let out = map_parallel(&items, 7, |i| {
            std::thread::sleep(std::time::Duration::from_millis(50 - i));
            i * 2
        });
        let expected: Vec<Option<u64>> = items.iter().map(|i| Some(i * 2)).collect();
        assert_eq!(out, expected);
        assert!(map_parallel(&Vec::<u8>::new(), 4, |_| 1).is_empty());
    }

    #[test]
    fn a_panicking_item_is_none_and_the_others_finish() {
        let out = map_parallel(&[1, 2, 3], 2, |i| {
            assert_ne!(*i, 2, "boom");
            *i
        });
        assert_eq!(out, vec![Some(1), None, Some(3)]);
    }
}
