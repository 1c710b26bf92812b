//! The progress bar of long replays and exports: drawn on stderr only when stderr is a terminal, so
//! piped or redirected runs (CI, `> file`, scripts) stay byte-for-byte quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Events between two updates of the bar: the bar is cheap, but not free per event at 10^6 events/s.
const STEP: u64 = 4096;

/// A progress bar over `total` log events, or a no-op.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    pending: u64,
}

impl Progress {
    /// A bar on stderr if stderr is a terminal, otherwise nothing.
    pub fn for_terminal(total: u64, label: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        // The template is a constant; should it ever fail to parse, fall back to the default style.
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>8} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Progress {
            bar: Some(bar),
            pending: 0,
        }
    }

    /// No bar at all (tests, gRPC, benchmarks).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            pending: 0,
        }
    }

    /// Whether a bar is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// One more event processed.
    pub fn tick(&mut self) {
        if let Some(bar) = &self.bar {
            self.pending += 1;
            if self.pending >= STEP {
                bar.inc(self.pending);
                self.pending = 0;
            }
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.inc(self.pending);
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_counts_nothing_and_finishes_quietly() {
        let mut progress = Progress::hidden();
        for _ in 0..10_000 {
            progress.tick();
        }
        assert!(!progress.is_visible());
        progress.finish();
    }
}
