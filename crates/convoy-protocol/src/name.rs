//! Crate names as crates.io accepts them.
//!
//! The rules come from crates.io's `crates_io_validation`: ASCII, a letter
//! first, then letters, digits, `-` or `_`, at most 64 characters, and none of
//! the names reserved for the toolchain or by Windows. Two names that differ
//! only by case or by `-`/`_` are the same crate ("canonical form"), because
//! otherwise a look-alike could shadow an existing crate.

use std::fmt;
use std::str::FromStr;

use crate::text::quote;

/// The longest crate name crates.io accepts.
pub const MAX_NAME_LENGTH: usize = 64;

/// Names that belong to the toolchain or that Windows cannot use as file names.
const RESERVED_NAMES: &[&str] = &[
    "alloc",
    "build",
    "builtin",
    "cargo",
    "compiler_builtins",
    "core",
    "crate",
    "proc_macro",
    "rustc",
    "self",
    "std",
    "super",
    "test",
    "aux",
    "con",
    "nul",
    "prn",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Why a crate name was refused. The name inside is quoted by
/// [`quote`]: it may come from a request path of any length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCrateName {
    /// The name is empty.
    #[error("crate name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LENGTH`].
    #[error("crate name `{name}` is too long, the maximum is {max} characters")]
    TooLong {
        /// The refused name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The name does not start with an ASCII letter.
    #[error("crate name `{name}` must start with an ASCII letter")]
    StartWithLetter {
        /// The refused name.
        name: String,
    },
    /// The name holds a character outside `[A-Za-z0-9_-]`.
    #[error(
        "invalid character `{}` in crate name `{name}`, only ASCII alphanumerics, `-` and `_` are allowed",
        .ch.escape_default()
    )]
    InvalidCharacter {
        /// The refused name.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// The name is reserved.
    #[error("crate name `{name}` is reserved")]
    Reserved {
        /// The refused name.
        name: String,
    },
}

/// A crate name that passed crates.io's rules. It keeps the spelling it was
/// given, because the index and downloads use the original case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrateName(String);

impl CrateName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidCrateName> {
        let name = name.into();
        validate(&name)?;
        Ok(Self(name))
    }

    /// The name as it was spelled.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical form: lower case with `-` folded to `_`.
    pub fn canonical(&self) -> String {
        canonical_name(&self.0)
    }
}

/// The canonical form of any string, valid name or not: lower case with `-`
/// folded to `_`. Two crates with the same canonical form are the same crate.
pub fn canonical_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn validate(name: &str) -> Result<(), InvalidCrateName> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(InvalidCrateName::Empty);
    };
    if name.len() > MAX_NAME_LENGTH {
        return Err(InvalidCrateName::TooLong {
            name: quote(name),
            max: MAX_NAME_LENGTH,
        });
    }
    if !first.is_ascii_alphabetic() {
        return Err(InvalidCrateName::StartWithLetter { name: quote(name) });
    }
    if let Some(ch) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(InvalidCrateName::InvalidCharacter {
            name: quote(name),
            ch,
        });
    }
    let canonical = canonical_name(name);
    if RESERVED_NAMES.contains(&canonical.as_str()) {
        return Err(InvalidCrateName::Reserved { name: quote(name) });
    }
    Ok(())
}

impl FromStr for CrateName {
    type Err = InvalidCrateName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for CrateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CrateName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for CrateName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CrateName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_snapshot;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["serde", "serde_json", "tokio-util", "a", "A1_b-c"] {
            assert!(CrateName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        let err = |n: &str| CrateName::new(n).expect_err(n).to_string();
        assert_snapshot!(err(""), @"crate name cannot be empty");
        assert_snapshot!(err("1abc"), @"crate name `1abc` must start with an ASCII letter");
        assert_snapshot!(err("a.b"), @"invalid character `.` in crate name `a.b`, only ASCII alphanumerics, `-` and `_` are allowed");
        assert_snapshot!(err("Proc-Macro"), @"crate name `Proc-Macro` is reserved");
        assert_snapshot!(err("nul"), @"crate name `nul` is reserved");
        assert_snapshot!(err(&"a".repeat(65)), @"crate name `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…` is too long, the maximum is 64 characters");
        assert_snapshot!(err("a\nb"), @"invalid character `\\n` in crate name `a\\nb`, only ASCII alphanumerics, `-` and `_` are allowed");
    }

    #[test]
    fn canonical_form_folds_case_and_dashes() {
        assert_eq!(canonical_name("Foo-Bar_baz"), "foo_bar_baz");
        let a = CrateName::new("my-crate").expect("valid");
        let b = CrateName::new("My_Crate").expect("valid");
        assert_eq!(a.canonical(), b.canonical());
    }
}
