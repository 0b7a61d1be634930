//! # sgvlm-testdata
//!
//! Used by tests and benchmarks only (a dev-dependency): finds the shared reference material (`shared/` beside the
//! checkout: the oracle files, the TOON conformance fixtures, the reference prompts) and reads the oracle's JSON
//! Lines. One place for what every crate's tests need, instead of a copy per crate.

pub mod chat_server;

use std::path::PathBuf;

/// The `shared/` folder: `$SGVLM_SHARED` if set, else `shared/` beside the repository (CI lays it there), else
/// `/work/shared`.
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

/// A file of the oracle (`shared/testdata/oracle/<name>`).
pub fn oracle_path(name: &str) -> PathBuf {
    shared_dir().join("testdata/oracle").join(name)
}

/// The text of an oracle file; panics with the path when it cannot be read (tests cannot run without it).
pub fn oracle_text(name: &str) -> String {
    let path = oracle_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Rows of an oracle JSON-Lines file, split on `\n` only (the strings inside hold other line separators).
pub fn oracle_rows(name: &str) -> Vec<serde_json::Value> {
    oracle_text(name)
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("oracle row is JSON"))
        .collect()
}

/// Oracle kinds whose reference values come from Python's Unicode rules (`\\d`/`int()` accept non-ASCII digits,
/// `re.I` folds some non-ASCII letters), where sgvlm deliberately differs. Parity tests allow rows of these kinds
/// to differ, and print them.
pub const UNICODE_KINDS: [(&str, &str); 6] = [
    ("unicode_digits", "Python's \\d / isdigit / int accept non-ASCII decimal digits"),
    ("unicode_letters", "Python's re.I folds some non-ASCII letters"),
    ("unicode_junk", "non-ASCII characters hitting Python-only digit or case rules"),
    ("unicode_label", "non-ASCII letters in labels"),
    ("other_line_separator", "Unicode line separators"),
    ("superscript_digit_in_rel", "Python's isdigit accepts superscripts, then int() raises"),
];

/// Whether rows of this oracle kind may differ from the reference (see [`UNICODE_KINDS`]).
pub fn is_unicode_kind(kind: &str) -> bool {
    UNICODE_KINDS.iter().any(|(k, _)| *k == kind)
}

/// Rows per second over `rows`, for throughput examples on a shared machine: the rows are timed in chunks of 32
/// and each chunk's fastest time over `passes` passes is summed (a chunk takes well under a millisecond, so most of
/// its passes run undisturbed: the figure estimates an undisturbed core). `run` scores one chunk; its input goes
/// through `black_box`, and it should fold every result into a checksum so no pass can be skipped.
pub fn best_chunk_throughput<T>(rows: &[T], passes: usize, mut run: impl FnMut(&[T])) -> f64 {
    let chunks: Vec<&[T]> = rows.chunks(32).collect();
    let mut best = vec![f64::MAX; chunks.len()];
    for _ in 0..passes {
        for (k, chunk) in chunks.iter().enumerate() {
            let t = std::time::Instant::now();
            run(std::hint::black_box(chunk));
            best[k] = best[k].min(t.elapsed().as_secs_f64());
        }
    }
    rows.len() as f64 / best.iter().sum::<f64>()
}
