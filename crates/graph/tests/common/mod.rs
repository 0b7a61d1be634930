//! Helpers shared by the integration tests: locating the shared test data and reading JSON Lines.

use std::path::PathBuf;

/// The `shared/` directory: `CARGO_MANIFEST_DIR/../../../shared` when the repository sits next to it, else the
/// `SGVLM_SHARED` environment variable, else `/work/shared`.
pub fn shared_dir() -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if beside.is_dir() {
        return beside;
    }
    if let Some(p) = std::env::var_os("SGVLM_SHARED") {
        return PathBuf::from(p);
    }
    PathBuf::from("/work/shared")
}

/// Rows of an oracle file (`shared/testdata/oracle/<name>`), split on `\n` only.
pub fn oracle_rows(name: &str) -> Vec<serde_json::Value> {
    let path = shared_dir().join("testdata/oracle").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("oracle row is JSON"))
        .collect()
}
