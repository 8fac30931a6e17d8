//! Entry names that every platform can hold as one distinct file.
//!
//! A crate is unpacked on Windows and macOS too. A name that those systems
//! store under another spelling, or not at all, lets one entry overwrite
//! another after the checks ran: `Cargo.toml.` becomes `Cargo.toml` on
//! Windows, `CARGO~1.TOM` may be the short name of the manifest, and
//! `src/LIB.rs` is `src/lib.rs` on a case-insensitive file system.

/// Device names Windows reserves in every directory, with any extension.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "clock$", "conin$", "conout$", "com0", "com1", "com2", "com3",
    "com4", "com5", "com6", "com7", "com8", "com9", "com¹", "com²", "com³", "lpt0", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "lpt¹", "lpt²", "lpt³",
];

/// What makes `component` (one path segment, not empty, not `.`/`..`)
/// unsafe to unpack, if anything.
pub(crate) fn component_problem(component: &str) -> Option<String> {
    if let Some(c) = component
        .chars()
        .find(|c| c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '\\'))
    {
        return Some(format!(
            "the character `{}`, which Windows does not allow in file names",
            c.escape_default()
        ));
    }
    if component.ends_with('.') || component.ends_with(' ') {
        return Some("a trailing dot or space, which Windows strips".to_owned());
    }
    let stem = component
        .split('.')
        .next()
        .unwrap_or(component)
        .trim_end_matches(' ')
        .to_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Some("a device name that Windows reserves".to_owned());
    }
    if is_short_name(&stem) {
        return Some(
            "the shape of a Windows 8.3 short name, which can alias another file".to_owned(),
        );
    }
    None
}

/// `NAME~N`: the tilde-and-digits tail Windows gives generated short names.
fn is_short_name(stem: &str) -> bool {
    match stem.rsplit_once('~') {
        Some((_, digits)) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_components_are_named() {
        for bad in [
            "Cargo.toml.",
            "lib.rs ",
            "CARGO~1.TOM",
            "con",
            "NUL.txt",
            "com1.rs",
            "Aux .rs",
            "file::$DATA",
            "a<b",
            "a\\b",
            "tab\there",
            "q?",
        ] {
            assert!(component_problem(bad).is_some(), "{bad}");
        }
        for good in [
            "Cargo.toml",
            "lib.rs",
            "console.rs",
            "nul_ptr.rs",
            "a~b.rs",
            ".gitignore",
        ] {
            assert_eq!(component_problem(good), None, "{good}");
        }
    }
}
