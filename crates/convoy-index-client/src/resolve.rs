//! Which registry a command targets, and with which token and network
//! settings.

use std::path::{Path, PathBuf};

use convoy_protocol::crates_io;

use crate::config::{CargoConfig, ConfigOptions};
use crate::credential::{env_name, find_token};
use crate::error::ResolveError;
use crate::http::HttpConfig;

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct RegistryRequest {
    /// `--registry NAME`.
    pub registry: Option<String>,
    /// `--index URL`.
    pub index: Option<String>,
    /// `--token TOKEN`; wins over configured tokens.
    pub token: Option<String>,
}

/// The registry a command acts on.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// Its name in cargo config (`crates-io` for crates.io), when it has one.
    /// `publish = [...]` allow-lists are matched against this.
    pub name: Option<String>,
    /// The sparse index URL, `sparse+http(s)://…/`.
    pub index: String,
    /// The token to send, if one is configured.
    pub token: Option<String>,
    /// The network settings every client of this registry is built with.
    pub http: HttpConfig,
}

impl std::fmt::Debug for RegistryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("RegistryTarget")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("http", &self.http)
            .finish()
    }
}

impl RegistryTarget {
    /// A target with cargo's default network settings, for callers that
    /// have no configuration to read (tests, benchmarks).
    pub fn new(name: Option<String>, index: impl Into<String>, token: Option<String>) -> Self {
        Self {
            name,
            index: index.into(),
            token,
            http: HttpConfig::default(),
        }
    }

    /// Whether this is crates.io, whose extra rules (no cross-registry
    /// dependencies) apply.
    pub fn is_crates_io(&self) -> bool {
        crates_io::is_crates_io(&self.index)
    }

    /// A short label for messages: the name, or the index URL.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.index)
    }
}

/// Resolves `req` from the current process environment and the cargo
/// configuration that applies in `cwd`, in cargo's order: `--registry`,
/// `--index`, `registry.default`, then crates.io.
pub fn resolve_registry(req: &RegistryRequest, cwd: &Path) -> Result<RegistryTarget, ResolveError> {
    CargoConfig::load(cwd, &ConfigOptions::default())?.resolve(req)
}

/// [`resolve_registry`] with an explicit environment and `CARGO_HOME`
/// instead of the process's, so tests stay hermetic.
pub fn resolve_registry_with(
    req: &RegistryRequest,
    cwd: &Path,
    env: Option<Vec<(String, String)>>,
    cargo_home: Option<PathBuf>,
) -> Result<RegistryTarget, ResolveError> {
    let options = ConfigOptions {
        env,
        cargo_home,
        ..ConfigOptions::default()
    };
    CargoConfig::load(cwd, &options)?.resolve(req)
}

impl CargoConfig {
    /// The registry `req` names, with its token from the credential
    /// provider chain (`--token` wins) and this configuration's network
    /// settings.
    pub fn resolve(&self, req: &RegistryRequest) -> Result<RegistryTarget, ResolveError> {
        if req.registry.is_some() && req.index.is_some() {
            return Err(ResolveError::Conflict);
        }
        let config = &self.config;
        let (name, index) = if let Some(index) = &req.index {
            let index = normalize_index(index)?;
            let name = config
                .registries
                .iter()
                .filter(|(_, r)| {
                    r.index
                        .as_deref()
                        .map(normalize_index)
                        .and_then(Result::ok)
                        .as_deref()
                        == Some(index.as_str())
                })
                .map(|(n, _)| {
                    // An environment-defined registry is keyed `MY_REG`; cargo
                    // calls it `my-reg`.
                    if n.chars().any(|c| c.is_ascii_uppercase()) {
                        n.to_ascii_lowercase().replace('_', "-")
                    } else {
                        n.clone()
                    }
                })
                .next()
                .or_else(|| crates_io::is_crates_io(&index).then(|| crates_io::NAME.to_owned()));
            (name, index)
        } else {
            let name = req
                .registry
                .clone()
                .or_else(|| config.registry.default.clone())
                .unwrap_or_else(|| crates_io::NAME.to_owned());
            let index = if name == crates_io::NAME {
                crates_io::INDEX.to_owned()
            } else {
                let index =
                    registry_field(config, &name, |r| r.index.clone()).ok_or_else(|| {
                        ResolveError::UnknownRegistry {
                            name: name.clone(),
                            env: format!("CARGO_REGISTRIES_{}_INDEX", env_name(&name)),
                        }
                    })?;
                normalize_index(&index)?
            };
            (Some(name), index)
        };

        let token = match &req.token {
            Some(token) => Some(token.clone()),
            None => find_token(self, name.as_deref(), &index).map_err(|source| {
                ResolveError::Credential {
                    registry: name.clone().unwrap_or_else(|| index.clone()),
                    source,
                }
            })?,
        };
        Ok(RegistryTarget {
            name,
            index,
            token,
            http: self.http().clone(),
        })
    }
}

/// A field of `[registries.<name>]`. cargo-config2 files
/// `CARGO_REGISTRIES_MY_REG_*` under the key `MY_REG`, not under the name
/// `my-reg` that cargo maps it to, so the environment spelling is looked up
/// too, and wins as it does in cargo.
fn registry_field(
    config: &cargo_config2::Config,
    name: &str,
    field: impl Fn(&cargo_config2::RegistriesConfigValue) -> Option<String>,
) -> Option<String> {
    let env_spelling = env_name(name);
    config
        .registries
        .get(&env_spelling)
        .and_then(&field)
        .or_else(|| config.registries.get(name).and_then(&field))
}

/// Accepts crates.io's git URL as crates.io, and refuses other git indexes.
fn normalize_index(index: &str) -> Result<String, ResolveError> {
    if crates_io::is_crates_io(index) {
        return Ok(crates_io::INDEX.to_owned());
    }
    if !(index.starts_with("sparse+http://") || index.starts_with("sparse+https://")) {
        return Err(ResolveError::NotSparse {
            index: index.to_owned(),
        });
    }
    let mut index = index.to_owned();
    if !index.ends_with('/') {
        index.push('/');
    }
    Ok(index)
}
