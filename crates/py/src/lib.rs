//! # sgvlm-py
//!
//! The Python module `sgvlm` (compiled part: `sgvlm._sgvlm`): sgvlm's exact, fast pieces for Python trainers and
//! evaluation scripts. Every function is a thin adapter over the Rust crates, with the same results and messages
//! as the `sgvlm` CLI:
//!
//! | Python | Rust |
//! |---|---|
//! | `validate(text, schema)` | `sgvlm_graph::strict::parse` (the GRPO format gate) |
//! | `parse(text, schema, mode)` | `strict::parse` or `lenient::parse_completion` |
//! | `to_toon(graph, layout)`, `to_json(graph)` | `toon::encode_paper` / `encode(RAW)` / `spec::encode_graph`, `json::to_r1sgg_string` |
//! | `rewards(completions, solutions, schema, **settings)` | `sgvlm_eval::rewards::score_batch` ([`rewards`]) |
//! | `evaluate(rows, schema, protocol, iou)` | `strict_eval` / `ag_sgdet` ([`evaluate`]) |
//!
//! Batch calls release the GIL and run on rayon's pool; a panic becomes `RuntimeError` ([`convert::guarded`]).
//! The MS-SWIFT reward plugin (`sgvlm.swift_plugin`) is Python, in `python/sgvlm/`. Build with maturin
//! (`pip install ./crates/py`); see `docs/python.md`. This crate knows nothing the other crates do not: it adds
//! no behaviour of its own beyond argument conversion.

mod convert;
mod evaluate;
mod rewards;

use convert::{schema as schema_arg, settings, to_json_value, to_py};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::json;
use sgvlm_graph::{json as r1sgg, lenient, strict, toon, SceneGraph, Schema, StrictError};

/// Rust allocations of the extension (never handed to Python, which copies every result) go to mimalloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pyo3::create_exception!(
    sgvlm,
    InvalidGraphError,
    pyo3::exceptions::PyValueError,
    "A text failed the strict gate. A `ValueError`; `.line` is the 1-based line (or None), `.code` a stable \
     error name."
);

/// The exception for a strict-gate failure, with its message as `sgvlm toon validate` prints it.
fn invalid(py: Python<'_>, e: &StrictError) -> PyErr {
    let err = InvalidGraphError::new_err(format!("invalid: {e}"));
    let value = err.value(py);
    // Attributes are best effort: the message already carries the line.
    let _ = value.setattr("line", e.line);
    let _ = value.setattr("code", e.code());
    err
}

/// Checks a model output against the strict validity gate (the GRPO format reward).
///
/// Returns `(True, None)` or `(False, "line 4: …")`. `settings` are the gate's limits, named like the reference's
/// environment variables in any case (`img_w`, `img_h`, `max_objs`, `max_rels`, `ag_*`).
#[pyfunction]
#[pyo3(signature = (text, schema = "triplet", **settings_kw))]
fn validate(
    py: Python<'_>,
    text: &str,
    schema: &str,
    settings_kw: Option<&Bound<'_, PyDict>>,
) -> PyResult<(bool, Option<String>)> {
    let schema = schema_arg(schema)?;
    let cfg = settings(settings_kw)?.gate;
    let r = convert::guarded(py, || strict::parse(text, schema, &cfg).err())?;
    Ok(match r {
        None => (true, None),
        Some(e) => (false, Some(e.to_string())),
    })
}

/// Parses a model output into plain dicts.
///
/// `mode="strict"`: the graph the strict gate reads, `{"schema", "objects": [{"id", "name", "bbox": {"x1", "y1",
/// "x2", "y2"}}], "relations" | "pairs": […]}`; raises `InvalidGraphError` (a `ValueError`) when the text fails
/// the gate. `mode="lenient"`: what the reward's salvaging parser recovers from any text, `{"schema", "objects",
/// "relations", "meta"}` (Action Genome relations are atomic, `"spatial__behind"`); never raises on text.
#[pyfunction]
#[pyo3(signature = (text, schema = "triplet", mode = "strict", **settings_kw))]
fn parse<'py>(
    py: Python<'py>,
    text: &str,
    schema: &str,
    mode: &str,
    settings_kw: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let schema = schema_arg(schema)?;
    let cfg = settings(settings_kw)?.gate;
    match mode {
        "strict" => match convert::guarded(py, || strict::parse(text, schema, &cfg))? {
            Ok(g) => to_py(py, &g),
            Err(e) => Err(invalid(py, &e)),
        },
        "lenient" => {
            let v = convert::guarded(py, || lenient_json(&lenient::parse_completion(text, schema, &cfg), schema))?;
            to_py(py, &v)
        }
        _ => Err(PyValueError::new_err(format!("unknown mode `{mode}` (expected `strict` or `lenient`)"))),
    }
}

fn lenient_json(g: &lenient::LenientGraph, schema: Schema) -> serde_json::Value {
    let objects: Vec<_> = g
        .objects
        .iter()
        .map(|o| {
            let [x1, y1, x2, y2] = o.bbox;
            json!({"id": o.id, "name": o.name.as_str(), "bbox": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}})
        })
        .collect();
    let relations: Vec<_> =
        g.relations.iter().map(|r| json!({"subj": r.subj, "pred": r.pred.as_str(), "obj": r.obj})).collect();
    let m = &g.meta;
    json!({
        "schema": schema.as_str(),
        "objects": objects,
        "relations": relations,
        "meta": {
            "declared_objects": m.declared_objects,
            "declared_relations": m.declared_relations,
            "relation_lines": m.relation_lines,
            "invalid_ref": m.invalid_ref,
            "invalid_pred": m.invalid_pred,
            "pairs": m.pairs,
            "frac_invalid_rel": m.invalid_fraction(),
        },
    })
}

/// A graph from a dict: sgvlm's form (with `"schema"`, as `parse` returns it) or R1-SGG JSON (`"objects"` with
/// string ids and `"relationships"`), or a string holding either as JSON.
fn graph_arg(graph: &Bound<'_, PyAny>) -> PyResult<SceneGraph> {
    let v = match graph.cast::<PyString>() {
        Ok(s) => serde_json::from_str(&s.to_cow()?)
            .map_err(|e| PyValueError::new_err(format!("graph: invalid JSON: {e}")))?,
        Err(_) => to_json_value("graph", graph)?,
    };
    if v.get("schema").is_some() {
        return serde_json::from_value(v).map_err(|e| PyValueError::new_err(format!("not a valid scene graph: {e}")));
    }
    if v.get("relationships").is_some() {
        let g = r1sgg::from_r1sgg(&v).map_err(|e| PyValueError::new_err(format!("not a valid R1-SGG graph: {e}")))?;
        return Ok(SceneGraph::Triplet(g));
    }
    Err(PyValueError::new_err(
        "not a scene graph: expected a dict with `schema` (as sgvlm.parse returns) or an R1-SGG graph with \
         `objects` and `relationships`",
    ))
}

/// Writes a graph as TOON text.
///
/// `layout="paper"`: the training layout (`<answer>` tags; Action Genome indented 6/8); `"raw"`: rows indented 2,
/// no tags, no trailing newline (previous-frame graphs inside prompts); `"spec"`: spec-conformant TOON v4.
/// `graph` is a dict as `parse` returns it, or an R1-SGG JSON graph (dict or string).
#[pyfunction]
#[pyo3(signature = (graph, layout = "paper"))]
fn to_toon(py: Python<'_>, graph: &Bound<'_, PyAny>, layout: &str) -> PyResult<String> {
    let g = graph_arg(graph)?;
    match layout {
        "paper" => convert::guarded(py, || toon::encode_paper(&g)),
        "raw" => convert::guarded(py, || toon::encode(&g, &toon::Layout::RAW)),
        "spec" => convert::guarded(py, || toon::spec::encode_graph(&g)),
        _ => Err(PyValueError::new_err(format!("unknown layout `{layout}` (expected `paper`, `raw` or `spec`)"))),
    }
}

/// Writes a triplet graph as R1-SGG JSON text (`{"objects": [{"id": "person.1", "bbox": […]}], "relationships":
/// […]}`).
#[pyfunction]
fn to_json(py: Python<'_>, graph: &Bound<'_, PyAny>) -> PyResult<String> {
    match graph_arg(graph)? {
        SceneGraph::Triplet(t) => convert::guarded(py, || r1sgg::to_r1sgg_string(&t)),
        SceneGraph::Ag(_) => Err(PyValueError::new_err(
            "R1-SGG JSON exists for the triplet schema only (use to_toon(graph, layout=\"spec\"))",
        )),
    }
}

/// sgvlm: scene-graph texts (TOON), GRPO rewards and evaluation of SceneGraphVLM, implemented in Rust.
#[pymodule]
fn _sgvlm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("REWARD_NAMES", sgvlm_eval::rewards::REWARD_NAMES.to_vec())?;
    m.add("SETTINGS", sgvlm_eval::rewards::CONFIG_KEYS.iter().filter(|k| **k != "REWARD_CONFIG").collect::<Vec<_>>())?;
    m.add("InvalidGraphError", m.py().get_type::<InvalidGraphError>())?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(parse, m)?)?;
    m.add_function(wrap_pyfunction!(to_toon, m)?)?;
    m.add_function(wrap_pyfunction!(to_json, m)?)?;
    m.add_function(wrap_pyfunction!(rewards::score_rewards, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    Ok(())
}
