//! `sgvlm.rewards`: the 13 GRPO reward functions over a batch, one list per function (the reference plugins'
//! batch interface), computed in one parallel pass without the GIL.

use crate::convert::{self, message_text, schema as schema_arg, settings};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sgvlm_eval::rewards::{self, Scores, REWARD_NAMES};

/// What the reference returns for an item it cannot read (its `except` path): 0 everywhere, `frac_no_rel` 1.
const FAILED: Scores = {
    let mut s = [0.0; 13];
    s[8] = 1.0;
    s
};

/// Scores `completions[i]` against `solutions[i]` with the 13 reward functions.
///
/// Returns `{name: [float, …]}` with the keys of `REWARD_NAMES`, each list in input order; the training reward is
/// the sum of the first eight. A completion (or solution) may be a string, a message list (the first message's
/// `content`) or a message dict, as the reference coerces it; anything else scores as the reference's error path
/// (0, and 1 for `sgg_diag_frac_no_rel`). `settings` are the reference's environment variables in any case
/// (`edge_iou_thresh=0.7`, `IMG_W=800`); unknown names raise `ValueError`. `protocol` is `"paper"` (the reference's
/// values) or `"sound"` (see the sgvlm-eval rewards docs); when omitted, the `REWARD_PROTOCOL` setting decides.
#[pyfunction]
#[pyo3(name = "rewards", signature = (completions, solutions, schema = "triplet", protocol = None, **settings_kw))]
pub fn score_rewards<'py>(
    py: Python<'py>,
    completions: &Bound<'py, PyAny>,
    solutions: &Bound<'py, PyAny>,
    schema: &str,
    protocol: Option<&str>,
    settings_kw: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let schema = schema_arg(schema)?;
    let mut cfg = settings(settings_kw)?;
    if let Some(p) = protocol {
        cfg.protocol = convert::protocol(p)?;
    }
    let comps = convert::collect(completions, "completions", |c| Ok(message_text(c)))?;
    let sols = convert::collect(solutions, "solutions", |s| Ok(message_text(s)))?;
    if comps.len() != sols.len() {
        return Err(PyValueError::new_err(format!(
            "completions and solutions differ in length ({} and {})",
            comps.len(),
            sols.len()
        )));
    }
    let columns = convert::guarded(py, || {
        let ok: Vec<usize> = (0..comps.len()).filter(|&i| comps[i].is_some() && sols[i].is_some()).collect();
        let c: Vec<&str> = ok.iter().filter_map(|&i| comps[i].as_deref()).collect();
        let s: Vec<&str> = ok.iter().filter_map(|&i| sols[i].as_deref()).collect();
        let scored = rewards::score_batch(&c, &s, schema, &cfg);
        let mut rows = vec![FAILED; comps.len()];
        for (&i, sc) in ok.iter().zip(scored) {
            rows[i] = sc;
        }
        rewards::by_function(&rows)
    })?;
    let out = PyDict::new(py);
    for (name, col) in REWARD_NAMES.iter().zip(columns) {
        out.set_item(*name, PyList::new(py, col)?)?;
    }
    Ok(out)
}
