//! Helpers shared by the integration tests: locating the shared test data and reading JSON Lines.
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

/// Rows of an oracle file (`shared/testdata/oracle/<name>`), split on `\n` only (the strings inside contain other
/// line separators).
pub fn oracle_rows(name: &str) -> Vec<serde_json::Value> {
    let path = shared_dir().join("testdata/oracle").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("oracle row is JSON"))
        .collect()
}
