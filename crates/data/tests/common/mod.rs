//! Helpers shared by the integration tests: locating `shared/` and the committed fixtures.
// Each test binary includes this module and uses a subset of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The `shared/` directory: `$SGVLM_SHARED` if set, else `CARGO_MANIFEST_DIR/../../../shared` (the repository sits
/// next to it), else `/work/shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SGVLM_SHARED") {
        return PathBuf::from(p);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared")
}

/// A committed fixture under `crates/data/tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// The text of a reference prompt (`shared/reference/prompts/<name>.txt`).
pub fn reference_prompt(name: &str) -> String {
    let path = shared_dir().join("reference/prompts").join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
