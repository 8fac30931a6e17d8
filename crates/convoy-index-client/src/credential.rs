//! The token of a registry, found as cargo 1.95 finds it (`util/auth`): the
//! registry's own `credential-provider`, else
//! `registry.global-credential-providers` tried from the last entry to the
//! first (default `["cargo:token"]`). A provider that does not know the
//! registry or has no token for it passes to the next; any other failure
//! stops the search.
//!
//! - `cargo:token`: `CARGO_REGISTRY_TOKEN` / `CARGO_REGISTRIES_<NAME>_TOKEN`
//!   (and `--config`), then `credentials.toml`, then config files;
//! - `cargo:token-from-stdout CMD ARGS…`: the one line `CMD` prints;
//! - anything else: an external provider spoken to over the
//!   cargo-credential protocol (`CMD ARGS… --cargo-plugin`, one JSON
//!   message per line), with `[credential-alias]` resolved.
//!
//! Convoy asks once per registry and command, for operation `read`, and
//! uses the answer for every request, as cargo does for a provider that
//! says its token is `operation_independent`. Tokens never reach a message
//! or a log line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cargo_config2::{CredentialProvider, PathAndArgs};
use cargo_credential::{
    Action, CredentialHello, CredentialRequest, CredentialResponse, Operation, RegistryInfo,
};

use crate::config::CargoConfig;
use crate::error::CredentialError;

/// One entry of a provider list.
#[derive(Debug, Clone, PartialEq)]
enum Provider {
    Token,
    TokenFromStdout(PathBuf, Vec<String>),
    Plugin(PathBuf, Vec<String>),
    Unsupported(String),
}

impl Provider {
    fn label(&self) -> String {
        let join = |path: &PathBuf, args: &[String]| {
            std::iter::once(path.display().to_string())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Self::Token => "cargo:token".to_owned(),
            Self::TokenFromStdout(path, args) => {
                format!("cargo:token-from-stdout {}", join(path, args))
            }
            Self::Plugin(path, args) => join(path, args),
            Self::Unsupported(name) => name.clone(),
        }
    }
}

/// What one provider said.
enum Answer {
    Token(String),
    /// `not-found` or `url-not-supported`: ask the next provider.
    Pass,
}

/// The token for registry `name` (`crates-io` for crates.io, `None` for an
/// index URL no configured name matches) at `index`, from the provider
/// chain; `None` when no provider has one.
pub(crate) fn find_token(
    cfg: &CargoConfig,
    name: Option<&str>,
    index: &str,
) -> Result<Option<String>, CredentialError> {
    let crates_io = name == Some(convoy_protocol::crates_io::NAME);
    // Cargo tells providers crates.io's canonical (git) URL.
    let index_url = if crates_io {
        convoy_protocol::crates_io::GIT_INDEX
    } else {
        index
    };
    for provider in providers(cfg, name, crates_io) {
        let answer = match &provider {
            Provider::Token => configured_token(cfg, name, crates_io).map(Answer::Token),
            Provider::TokenFromStdout(path, args) => {
                Some(token_from_stdout(&provider, path, args, index_url, name)?)
            }
            Provider::Plugin(path, args) => {
                Some(plugin_token(&provider, path, args, index_url, name)?)
            }
            Provider::Unsupported(name) => {
                return Err(CredentialError::Unsupported {
                    provider: name.clone(),
                });
            }
        };
        if let Some(Answer::Token(token)) = answer {
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// The providers to try, first to last.
fn providers(cfg: &CargoConfig, name: Option<&str>, crates_io: bool) -> Vec<Provider> {
    let own = if crates_io {
        cfg.config
            .registry
            .credential_provider
            .as_ref()
            .map(|p| from_config(cfg, p))
    } else {
        name.and_then(|name| {
            // cargo-config2 files `CARGO_REGISTRIES_<NAME>_CREDENTIAL_PROVIDER`
            // wrongly, so the variable is read here.
            let key = format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", env_name(name));
            match cfg.var(&key).filter(|v| !v.trim().is_empty()) {
                Some(value) => Some(from_words(cfg, value)),
                None => cfg
                    .config
                    .registries
                    .get(name)
                    .and_then(|r| r.credential_provider.as_ref())
                    .map(|p| from_config(cfg, p)),
            }
        })
    };
    if let Some(own) = own {
        return vec![own];
    }
    let global: Vec<Provider> = cfg
        .config
        .registry
        .global_credential_providers
        .as_ref()
        .iter()
        .rev()
        .map(|p| from_config(cfg, p))
        .collect();
    if global.is_empty() {
        vec![Provider::Token]
    } else {
        global
    }
}

fn from_config(cfg: &CargoConfig, p: &CredentialProvider) -> Provider {
    match p {
        CredentialProvider::CargoToken => Provider::Token,
        CredentialProvider::CargoTokenFromStdout(cmd) => {
            let (path, args) = split(cmd);
            Provider::TokenFromStdout(path, args)
        }
        CredentialProvider::Plugin(cmd) => {
            let (path, args) = split(cmd);
            Provider::Plugin(path, args)
        }
        CredentialProvider::Alias(alias) => match cfg.config.credential_alias.get(alias) {
            Some(cmd) => {
                let (path, args) = split(cmd);
                Provider::Plugin(path, args)
            }
            None => Provider::Plugin(PathBuf::from(alias), Vec::new()),
        },
        CredentialProvider::CargoWincred => Provider::Unsupported("cargo:wincred".into()),
        CredentialProvider::CargoMacosKeychain => {
            Provider::Unsupported("cargo:macos-keychain".into())
        }
        CredentialProvider::CargoLibsecret => Provider::Unsupported("cargo:libsecret".into()),
        _ => Provider::Unsupported("an unknown `cargo:` provider".into()),
    }
}

/// A provider written as space-separated words, as in an environment
/// variable.
fn from_words(cfg: &CargoConfig, value: &str) -> Provider {
    let mut words = value.split_whitespace().map(str::to_owned);
    let first = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    match first.as_str() {
        "cargo:token" => Provider::Token,
        "cargo:token-from-stdout" => {
            let mut rest = rest.into_iter();
            let path = PathBuf::from(rest.next().unwrap_or_default());
            Provider::TokenFromStdout(path, rest.collect())
        }
        other if other.starts_with("cargo:") => Provider::Unsupported(other.to_owned()),
        alias if rest.is_empty() && cfg.config.credential_alias.contains_key(alias) => {
            from_config(cfg, &CredentialProvider::Alias(alias.to_owned()))
        }
        path => Provider::Plugin(PathBuf::from(path), rest),
    }
}

fn split(cmd: &PathAndArgs) -> (PathBuf, Vec<String>) {
    (
        cmd.path.clone(),
        cmd.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
}

/// The environment variable infix cargo uses for a registry name.
pub(crate) fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// `cargo:token`: the environment (and `--config`) first, then
/// `credentials.toml`, then the config files.
fn configured_token(cfg: &CargoConfig, name: Option<&str>, crates_io: bool) -> Option<String> {
    let credentials = read_credentials(cfg);
    if crates_io {
        return cfg
            .var("CARGO_REGISTRY_TOKEN")
            .map(str::to_owned)
            .or_else(|| credentials.registry.and_then(|r| r.token))
            .or_else(|| cfg.config.registry.token.clone());
    }
    let name = name?;
    cfg.var(&format!("CARGO_REGISTRIES_{}_TOKEN", env_name(name)))
        .map(str::to_owned)
        .or_else(|| {
            credentials
                .registries
                .into_iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, r)| r.token)
        })
        .or_else(|| {
            cfg.config
                .registries
                .get(name)
                .and_then(|r| r.token.clone())
        })
        .filter(|t| !t.is_empty())
}

#[derive(Debug, Default, serde::Deserialize)]
struct Credentials {
    #[serde(default)]
    registry: Option<CredentialEntry>,
    #[serde(default)]
    registries: std::collections::BTreeMap<String, CredentialEntry>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct CredentialEntry {
    token: Option<String>,
}

/// `cargo login` writes `credentials.toml` (older cargo: `credentials`);
/// cargo-config2 does not read it, so this does. A file that does not
/// parse holds no token, as far as Convoy can tell; cargo would refuse it,
/// and says why when it runs.
fn read_credentials(cfg: &CargoConfig) -> Credentials {
    let Some(home) = &cfg.home else {
        return Credentials::default();
    };
    for file in ["credentials.toml", "credentials"] {
        if let Ok(text) = std::fs::read_to_string(home.join(file)) {
            return toml::from_str(&text).unwrap_or_default();
        }
    }
    Credentials::default()
}

/// `cargo:token-from-stdout`: runs the command with the registry in its
/// environment, as cargo does, and takes its single line of output.
fn token_from_stdout(
    provider: &Provider,
    path: &PathBuf,
    args: &[String],
    index_url: &str,
    name: Option<&str>,
) -> Result<Answer, CredentialError> {
    let label = provider.label();
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env("CARGO_REGISTRY_INDEX_URL", index_url)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(name) = name {
        cmd.env("CARGO_REGISTRY_NAME_OPT", name);
    }
    let output = cmd.output().map_err(|source| CredentialError::Spawn {
        provider: label.clone(),
        source,
    })?;
    let failed = |reason: &str| CredentialError::Failed {
        provider: label.clone(),
        reason: reason.to_owned(),
    };
    if !output.status.success() {
        return Err(failed(&format!("it exited with {}", output.status)));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| failed("its output is not UTF-8"))?;
    let token = match text.split_once('\n') {
        Some((line, rest)) if rest.trim().is_empty() => line.trim_end_matches('\r'),
        Some(_) => {
            return Err(failed(
                "it printed more than one line; expected a single token",
            ));
        }
        None => text.as_str(),
    };
    if token.is_empty() {
        return Err(failed("it printed no token"));
    }
    Ok(Answer::Token(token.to_owned()))
}

/// An external provider: `path args… --cargo-plugin`, hello, one `get`
/// request for `read`, one answer.
fn plugin_token(
    provider: &Provider,
    path: &PathBuf,
    args: &[String],
    index_url: &str,
    name: Option<&str>,
) -> Result<Answer, CredentialError> {
    let label = provider.label();
    let failed = |reason: String| CredentialError::Failed {
        provider: label.clone(),
        reason,
    };
    let mut child = Command::new(path)
        .args(args)
        .arg("--cargo-plugin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| CredentialError::Spawn {
            provider: label.clone(),
            source,
        })?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("its pipes could not be opened".to_owned()));
    };
    let mut stdout = BufReader::new(stdout);
    let result = (|| {
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| failed(format!("reading its hello failed: {e}")))?;
        let hello: CredentialHello = serde_json::from_str(&line)
            .map_err(|e| failed(format!("its hello is not the protocol's: {e}")))?;
        if !hello.v.contains(&1) {
            return Err(failed(format!(
                "it speaks protocol versions {:?}, Convoy speaks 1",
                hello.v
            )));
        }
        let request = CredentialRequest {
            v: 1,
            registry: RegistryInfo {
                index_url,
                name,
                headers: Vec::new(),
            },
            action: Action::Get(Operation::Read),
            args: args.iter().map(String::as_str).collect(),
        };
        let mut message = serde_json::to_string(&request)
            .map_err(|e| failed(format!("the request could not be written: {e}")))?;
        message.push('\n');
        stdin
            .write_all(message.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| failed(format!("sending the request failed: {e}")))?;
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| failed(format!("reading its answer failed: {e}")))?;
        // The answer holds the token: a parse error must not quote it.
        let answer: Result<CredentialResponse, cargo_credential::Error> =
            serde_json::from_str(&line)
                .map_err(|_| failed("its answer is not the protocol's".to_owned()))?;
        match answer {
            Ok(CredentialResponse::Get { token, .. }) => Ok(Answer::Token(token.expose())),
            Ok(_) => Err(failed("it answered a `get` with something else".to_owned())),
            Err(cargo_credential::Error::NotFound | cargo_credential::Error::UrlNotSupported) => {
                Ok(Answer::Pass)
            }
            Err(e) => Err(failed(e.to_string())),
        }
    })();
    // Closing stdin tells the provider to exit.
    drop(stdin);
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let _ = child.wait();
    result
}
