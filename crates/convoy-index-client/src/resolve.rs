//! Which registry a command targets, and with which token.

use std::path::{Path, PathBuf};

/// crates.io's sparse index.
pub const CRATES_IO_INDEX: &str = "sparse+https://index.crates.io/";
/// The name cargo gives crates.io in `publish` lists and config.
pub const CRATES_IO_NAME: &str = "crates-io";

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
}

impl std::fmt::Debug for RegistryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("RegistryTarget")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RegistryTarget {
    /// Whether this is crates.io, whose extra rules (no cross-registry
    /// dependencies) apply.
    pub fn is_crates_io(&self) -> bool {
        self.index == CRATES_IO_INDEX
    }

    /// A short label for messages: the name, or the index URL.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.index)
    }
}

/// Why the registry could not be determined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Cargo configuration could not be read.
    #[error("failed to read cargo configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// `--registry` named something cargo config does not define.
    #[error(
        "registry `{name}` is not defined in cargo configuration, set `registries.{name}.index` or `CARGO_REGISTRIES_{}_INDEX`",
        env_name(name)
    )]
    UnknownRegistry {
        /// The name given.
        name: String,
    },
    /// The index is not a sparse one; Convoy only speaks the sparse protocol.
    #[error("index `{index}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL found.
        index: String,
    },
    /// `--registry` and `--index` were both given.
    #[error("`--registry` and `--index` cannot be used together")]
    Conflict,
    /// `credentials.toml` exists but is not valid TOML.
    #[error("failed to parse `{}`", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: toml::de::Error,
    },
}

/// The environment variable infix cargo uses for a registry name.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// Resolves `req` from the current process environment and the cargo
/// configuration that applies in `cwd`, in cargo's order: `--registry`,
/// `--index`, `registry.default`, then crates.io.
pub fn resolve_registry(req: &RegistryRequest, cwd: &Path) -> Result<RegistryTarget, ResolveError> {
    resolve_registry_with(req, cwd, None, None)
}

/// [`resolve_registry`] with an explicit environment and `CARGO_HOME`
/// instead of the process's, so tests stay hermetic.
pub fn resolve_registry_with(
    req: &RegistryRequest,
    cwd: &Path,
    env: Option<Vec<(String, String)>>,
    cargo_home: Option<PathBuf>,
) -> Result<RegistryTarget, ResolveError> {
    if req.registry.is_some() && req.index.is_some() {
        return Err(ResolveError::Conflict);
    }
    let home = cargo_home
        .clone()
        .or_else(|| default_cargo_home(env.as_deref()));
    let mut options = cargo_config2::ResolveOptions::default();
    if let Some(env) = &env {
        options = options.env(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(home) = &home {
        options = options.cargo_home(home.clone());
    }
    let config = cargo_config2::Config::load_with_options(cwd, options)
        .map_err(|e| ResolveError::Config(Box::new(e)))?;
    let credentials = read_credentials(home.as_deref())?;

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
            .or_else(|| (index == CRATES_IO_INDEX).then(|| CRATES_IO_NAME.to_owned()));
        (name, index)
    } else {
        let name = req
            .registry
            .clone()
            .or_else(|| config.registry.default.clone())
            .unwrap_or_else(|| CRATES_IO_NAME.to_owned());
        let index = if name == CRATES_IO_NAME {
            CRATES_IO_INDEX.to_owned()
        } else {
            let index = registry_field(&config, &name, |r| r.index.clone())
                .ok_or_else(|| ResolveError::UnknownRegistry { name: name.clone() })?;
            normalize_index(&index)?
        };
        (Some(name), index)
    };

    let token = req.token.clone().or_else(|| match name.as_deref() {
        Some(CRATES_IO_NAME) => config
            .registry
            .token
            .clone()
            .or_else(|| credentials.registry.and_then(|r| r.token)),
        Some(n) => registry_field(&config, n, |r| r.token.clone()).or_else(|| {
            credentials
                .registries
                .into_iter()
                .find(|(k, _)| k == n)
                .and_then(|(_, r)| r.token)
        }),
        None => None,
    });
    Ok(RegistryTarget { name, index, token })
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
    if index == "https://github.com/rust-lang/crates.io-index" {
        return Ok(CRATES_IO_INDEX.to_owned());
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

fn default_cargo_home(env: Option<&[(String, String)]>) -> Option<PathBuf> {
    let get = |key: &str| -> Option<String> {
        match env {
            Some(env) => env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            None => std::env::var(key).ok(),
        }
    };
    get("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".cargo")))
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
/// cargo-config2 does not read it, so this does.
fn read_credentials(home: Option<&Path>) -> Result<Credentials, ResolveError> {
    let Some(home) = home else {
        return Ok(Credentials::default());
    };
    for file in ["credentials.toml", "credentials"] {
        let path = home.join(file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return toml::from_str(&text)
                .map_err(|source| ResolveError::Credentials { path, source });
        }
    }
    Ok(Credentials::default())
}
