//! The progress bar of the commands that score a file row by row (`eval`, `reward`): drawn on stderr when it is a
//! terminal, advanced from the rayon worker threads, cleared when the work is done.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` rows, labelled `prefix`.
pub(super) fn rows(total: usize, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}
