//! Client text quoted back in errors or written to logs.
//!
//! Anything a client sends may hold newlines or terminal escape codes, and
//! may be megabytes long. Quoting it raw lets a request forge log lines,
//! repaint an operator's terminal, or turn a 261 KB upload into a 268 MB
//! error body. Every place that echoes client text goes through here.

use std::borrow::Cow;

/// At most this many characters of a client's text are quoted back, so an
/// error can never be larger than a few lines, whatever was sent.
pub const QUOTE_CHARS: usize = 64;

/// `text` cut to [`QUOTE_CHARS`] characters (with `…` when cut) and with
/// control characters escaped.
pub fn quote(text: &str) -> String {
    quote_at_most(text, QUOTE_CHARS)
}

/// [`quote`] with another length, for messages that carry more than a name
/// (a parser's error, say) but must stay bounded all the same.
pub fn quote_at_most(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// `text` with every control character escaped (`\n`, `\u{1b}`), whole.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_cuts_and_escapes() {
        assert_eq!(quote("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let long = "x".repeat(1000);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(escape_controls("a\r\nb"), "a\\r\\nb");
    }
}
