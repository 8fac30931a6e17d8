//! `cargo convoy`: publish a whole workspace, and serve a registry.
//!
//! This binary is glue: it parses arguments into each library's options,
//! calls one library function per subcommand, and renders an error once, here
//! at the top, as one `error:` line followed by its causes.

mod cli;
mod commands;
mod status;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::args_without_cargo_subcommand(std::env::args_os()));
    init_logging(cli.verbose);
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that stdout stays for data (the `listening on` line,
/// tokens, JSON documents).
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,convoy=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || EscapedLines {
            inner: std::io::stderr(),
            ansi,
        })
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

/// Log output with every control character escaped but the newline that
/// ends each event (and, on a terminal, the colour codes the formatter
/// adds itself), so no logged value can forge a log line or drive the
/// operator's terminal. The formatter writes one whole event per call.
struct EscapedLines<W> {
    inner: W,
    ansi: bool,
}

impl<W: std::io::Write> std::io::Write for EscapedLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let mut out = String::with_capacity(buf.len());
        for c in body.chars() {
            if c.is_control() && !(self.ansi && c == '\u{1b}') {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out.push_str(end);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[allow(clippy::print_stderr)]
fn report(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("\nCaused by:\n  {cause}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    #[test]
    fn log_lines_cannot_be_forged() {
        let mut out = super::EscapedLines {
            inner: Vec::new(),
            ansi: false,
        };
        out.write_all(b"INFO crate=a\nERROR forged \x1b[2J\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out.inner).unwrap(),
            "INFO crate=a\\nERROR forged \\u{1b}[2J\n"
        );
    }
}
