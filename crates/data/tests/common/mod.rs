//! Helpers shared by the integration tests: locating `shared/` and the committed fixtures.
// Each test binary includes this module and uses a subset of it.
#![allow(dead_code)]

use std::path::PathBuf;

pub use sgvlm_testdata::shared_dir;

/// A committed fixture under `crates/data/tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// The text of a reference prompt (`shared/reference/prompts/<name>.txt`).
pub fn reference_prompt(name: &str) -> String {
    let path = shared_dir().join("reference/prompts").join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
