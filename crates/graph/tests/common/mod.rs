//! Helpers shared by the integration tests.

/// The project's `shared/` directory: `CARGO_MANIFEST_DIR/../../../shared` (a worktree beside `shared/`), then
/// `$SGVLM_SHARED`, then `/work/shared`. The first that exists wins; the last is returned otherwise.
pub fn shared_dir() -> std::path::PathBuf {
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let from_env = std::env::var_os("SGVLM_SHARED").map(std::path::PathBuf::from);
    [Some(beside), from_env]
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| std::path::PathBuf::from("/work/shared"))
}
