//! Child processes the benchmark starts, and stops again whatever happens.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child that is stopped when dropped: SIGTERM first, so nginx's master
/// takes its workers down with it and the server flushes, then SIGKILL if it
/// is still there after a few seconds.
pub struct Guard {
    name: &'static str,
    child: Option<Child>,
}

impl Guard {
    pub fn new(name: &'static str, child: Child) -> Self {
        Self {
            name,
            child: Some(child),
        }
    }

    /// Whether the child has exited already.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => false,
            Some(_) | None => true,
        }
    }

    /// Stops the child and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // `kill(1)` rather than libc: the workspace forbids `unsafe`.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: {} did not stop on SIGTERM; killing it", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `VmHWM` and `VmRSS` of a process, in bytes.
pub fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{pid}/status"))?;
        let kb: u64 = line
            .trim_start_matches(key)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// An executable on `PATH` (or in the sbin directories, where Debian puts
/// nginx and which a non-root `PATH` often lacks).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (the owner of `/proc/self` is our
/// effective uid).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `apt-get install -y PACKAGE`, as root only. Returns why not otherwise.
pub fn apt_install(package: &str) -> Result<(), String> {
    if !is_root() {
        return Err("not running as root".into());
    }
    if find_program("apt-get").is_none() {
        return Err("apt-get is not available".into());
    }
    eprintln!("installing {package}: apt-get update && apt-get install -y {package}");
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or_else(|| format!("apt-get {} failed: {s}", args.join(" ")))
            })
    };
    run(&["update", "-q"])?;
    run(&["install", "-y", "-q", package])
}
