//! Cargo-style status output on stderr: a right-aligned coloured verb and a
//! message ("   Verifying foo v1.2.0"), plus a progress bar on long work
//! when stderr is a terminal. Output makes sense without colour.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();

/// The kind of line, which picks its colour.
#[derive(Clone, Copy)]
pub enum Tone {
    /// Progress (green).
    Ok,
    /// Informational (cyan).
    Note,
    /// Something to look at (yellow).
    Warn,
    /// A failure (red).
    Error,
}

/// Writes status lines, routing them above the progress bar when one is
/// showing.
pub struct Status {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Status {
    pub fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// A line: `verb` right-aligned to 12 columns, then `message`.
    pub fn line(&self, tone: Tone, verb: &str, message: &str) {
        let style = match tone {
            Tone::Ok => GREEN,
            Tone::Note => CYAN,
            Tone::Warn => YELLOW,
            Tone::Error => RED,
        };
        let text = format!("{style}{verb:>12}{style:#} {message}");
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => {
                let mut err = anstream::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    /// Starts a progress bar of `len` steps, shown only on a terminal.
    pub fn start_bar(&mut self, label: &str, len: u64) {
        self.finish_bar();
        let target = if self.terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len}: {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bar = Some(bar);
    }

    /// Sets what the bar says it is doing.
    pub fn bar_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }

    /// Advances the bar by one.
    pub fn bar_step(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Removes the bar.
    pub fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
