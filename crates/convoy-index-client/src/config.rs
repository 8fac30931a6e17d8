//! Cargo's configuration, read once per command with cargo's precedence, so
//! that Convoy's network settings and registries are those the user's cargo
//! has: `--config` over `CARGO_*` environment variables over config files
//! (the nearest first, `$CARGO_HOME/config.toml` last).
//!
//! cargo-config2 reads the files and the environment. It has no notion of
//! cargo's `--config` flag, so each `--config KEY=VALUE` (or `--config
//! FILE`) is turned into the `CARGO_*` variable cargo itself maps that key
//! to, and layered over the environment: the same precedence, with one
//! reader. The same flags are passed on to every cargo Convoy runs
//! ([`CargoConfig::cargo_args`]), so the inner cargo sees what Convoy saw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ResolveError;
use crate::http::{DEFAULT_USER_AGENT, HttpConfig};

/// Where the configuration comes from besides the config files around the
/// working directory.
#[derive(Debug, Clone, Default)]
pub struct ConfigOptions {
    /// `--config KEY=VALUE` or `--config PATH`, in the order given; a later
    /// one wins, as in cargo.
    pub cli: Vec<String>,
    /// `--offline`; `net.offline = true` in config means the same.
    pub offline: bool,
    /// The environment; the process's own when `None`. Tests pass one so
    /// they stay hermetic.
    pub env: Option<Vec<(String, String)>>,
    /// `CARGO_HOME`; from the environment (or `~/.cargo`) when `None`.
    pub cargo_home: Option<PathBuf>,
}

/// Cargo's configuration as it applies in one directory.
pub struct CargoConfig {
    pub(crate) config: cargo_config2::Config,
    /// The environment with the `--config` values layered over it.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) home: Option<PathBuf>,
    http: HttpConfig,
    offline: bool,
    /// `--config` values as given (paths made absolute), for inner cargo runs.
    cli: Vec<String>,
}

impl std::fmt::Debug for CargoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment and `--config` may hold tokens: never print them.
        f.debug_struct("CargoConfig")
            .field("home", &self.home)
            .field("http", &self.http)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl CargoConfig {
    /// Reads the configuration that applies in `cwd`.
    pub fn load(cwd: &Path, options: &ConfigOptions) -> Result<Self, ResolveError> {
        let mut env: Vec<(String, String)> = match &options.env {
            Some(env) => env.clone(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        let mut cli = Vec::with_capacity(options.cli.len());
        for arg in &options.cli {
            let (overrides, as_passed) = cli_overrides(arg, cwd)?;
            for (key, value) in overrides {
                env.retain(|(k, _)| *k != key);
                env.push((key, value));
            }
            cli.push(as_passed);
        }
        let home = options
            .cargo_home
            .clone()
            .or_else(|| default_cargo_home(&env));
        let mut resolve = cargo_config2::ResolveOptions::default().env(env.clone());
        if let Some(home) = &home {
            resolve = resolve.cargo_home(home.clone());
        }
        let config = cargo_config2::Config::load_with_options(cwd, resolve)
            .map_err(|e| ResolveError::Config(Box::new(e)))?;
        let offline = options.offline || config.net.offline == Some(true);
        let mut http = http_config(&config, &env, cwd);
        http.offline = offline;
        http.cargo_home = home.clone();
        Ok(Self {
            config,
            env,
            home,
            http,
            offline,
            cli,
        })
    }

    /// The settings every HTTP client of the command is built from.
    pub fn http(&self) -> &HttpConfig {
        &self.http
    }

    /// Whether the network is off limits (`--offline` or `net.offline`).
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// The flags to pass to every cargo Convoy runs, so that it reads the
    /// same configuration: each `--config`, and `--offline`.
    pub fn cargo_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .cli
            .iter()
            .flat_map(|c| ["--config".to_owned(), c.clone()])
            .collect();
        if self.offline {
            args.push("--offline".to_owned());
        }
        args
    }

    /// The `--config` values as inner cargo runs need them (file paths made
    /// absolute).
    pub fn cli_config(&self) -> &[String] {
        &self.cli
    }

    /// One variable of the effective environment (`--config` included).
    pub(crate) fn var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The `CARGO_*` variables one `--config` argument stands for, and the
/// argument as inner cargo runs should get it (a file path made absolute,
/// since they run elsewhere).
fn cli_overrides(arg: &str, cwd: &Path) -> Result<(Vec<(String, String)>, String), ResolveError> {
    let invalid = |reason: String| ResolveError::CliConfig {
        arg: redact_value(arg),
        reason,
    };
    // `KEY=VALUE` is one TOML assignment, as cargo reads it.
    if let Ok(table) = toml::from_str::<toml::Table>(arg) {
        let mut out = Vec::new();
        flatten("CARGO", &toml::Value::Table(table), &mut out);
        if out.is_empty() {
            return Err(invalid("it sets no value".to_owned()));
        }
        return Ok((out, arg.to_owned()));
    }
    let path = cwd.join(arg);
    if !path.is_file() {
        return Err(invalid(
            "expected `KEY=VALUE` in TOML syntax or the path of a config file".to_owned(),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mut out = Vec::new();
    flatten("CARGO", &toml::Value::Table(table), &mut out);
    Ok((out, path.display().to_string()))
}

/// `KEY=VALUE` with its value hidden: `--config registries.x.token=…`
/// must not end up in a message.
fn redact_value(arg: &str) -> String {
    match arg.split_once('=') {
        Some((key, _)) => format!("{}=…", key.trim()),
        None => arg.to_owned(),
    }
}

/// Cargo's environment spelling of every leaf under `prefix`:
/// `registries.my-reg.index` is `CARGO_REGISTRIES_MY_REG_INDEX`. Lists
/// become space-separated, as cargo reads list variables.
fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    let text = match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = key.to_ascii_uppercase().replace(['-', '.'], "_");
                flatten(&format!("{prefix}_{key}"), value, out);
            }
            return;
        }
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
        other => scalar(other),
    };
    out.push((prefix.to_owned(), text));
}

/// A TOML scalar as cargo reads it from an environment variable.
fn scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        // Nested lists and tables have no environment spelling.
        toml::Value::Array(_) | toml::Value::Table(_) => String::new(),
    }
}

/// The first of `keys` set (and not empty) in `env`.
pub(crate) fn env_var<'a>(env: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| {
        env.iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// `http.*` and `net.retry`, with cargo's defaults and the environment
/// variables curl reads for cargo (`https_proxy`, `http_proxy`, `no_proxy`).
fn http_config(config: &cargo_config2::Config, env: &[(String, String)], cwd: &Path) -> HttpConfig {
    let timeout = config
        .http
        .timeout
        .or_else(|| env_var(env, &["HTTP_TIMEOUT"]).and_then(|t| t.parse().ok()))
        .unwrap_or(30);
    HttpConfig {
        proxy: config.http.proxy.clone().filter(|p| !p.is_empty()),
        https_proxy: env_var(env, &["https_proxy", "HTTPS_PROXY"]).map(str::to_owned),
        // curl ignores `HTTP_PROXY` in capitals (a CGI program gets it from
        // a request header), and so cargo does.
        http_proxy: env_var(env, &["http_proxy"]).map(str::to_owned),
        all_proxy: env_var(env, &["all_proxy", "ALL_PROXY"]).map(str::to_owned),
        no_proxy: env_var(env, &["no_proxy", "NO_PROXY"]).map(str::to_owned),
        cainfo: config.http.cainfo.as_ref().map(|p| cwd.join(p)),
        timeout: Duration::from_secs(u64::from(timeout.max(1))),
        retry: config.net.retry.unwrap_or(3),
        user_agent: config
            .http
            .user_agent
            .clone()
            .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned()),
        offline: false,
        cargo_home: None,
    }
}

fn default_cargo_home(env: &[(String, String)]) -> Option<PathBuf> {
    env_var(env, &["CARGO_HOME"])
        .map(PathBuf::from)
        .or_else(|| env_var(env, &["HOME"]).map(|h| PathBuf::from(h).join(".cargo")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cli_values_become_cargo_variables() {
        let dir = std::env::temp_dir();
        let (vars, passed) = cli_overrides("http.proxy = \"127.0.0.1:3128\"", &dir).unwrap();
        assert_eq!(
            vars,
            vec![("CARGO_HTTP_PROXY".into(), "127.0.0.1:3128".into())]
        );
        assert_eq!(passed, "http.proxy = \"127.0.0.1:3128\"");
        let (vars, _) = cli_overrides("registries.my-reg.index='sparse+http://x/'", &dir).unwrap();
        assert_eq!(vars[0].0, "CARGO_REGISTRIES_MY_REG_INDEX");
        let (vars, _) = cli_overrides("net.retry=7", &dir).unwrap();
        assert_eq!(vars, vec![("CARGO_NET_RETRY".into(), "7".into())]);
        let (vars, _) = cli_overrides(
            "registry.global-credential-providers=['cargo:token', 'my-provider']",
            &dir,
        )
        .unwrap();
        assert_eq!(vars[0].1, "cargo:token my-provider");
    }

    #[test]
    fn bad_cli_config_hides_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let err = cli_overrides("registries.x.token=not toml", dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("registries.x.token=…"), "{text}");
        assert!(!text.contains("not toml"), "{text}");
    }

    #[test]
    fn cli_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("extra.toml"), "[http]\ntimeout = 5\n").unwrap();
        let (vars, passed) = cli_overrides("extra.toml", dir.path()).unwrap();
        assert_eq!(vars, vec![("CARGO_HTTP_TIMEOUT".into(), "5".into())]);
        assert!(Path::new(&passed).is_absolute());
    }
}
