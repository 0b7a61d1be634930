//! Reading inputs: a path or `-` for stdin, with errors that name the file.

use anyhow::Context;
use std::io::Read;
use std::path::Path;

/// Reads a whole file (or stdin for `-`) as UTF-8.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("Failed to read stdin as UTF-8")?;
        Ok(s)
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("Failed to read `{}`", path.display()))?;
        String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "`{}` is not valid UTF-8 (first bad byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })
    }
}

/// A short name for messages.
pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}
