//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The shared material folder (`../shared` next to the repository): `SGVLM_SHARED` if set, else the folder beside
/// the checkout, else `/work/shared`.
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("SGVLM_SHARED") {
        return PathBuf::from(p);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared")
}
