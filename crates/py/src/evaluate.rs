//! `sgvlm.evaluate`: strict PSG/PVSG evaluation or Action Genome SGDET metrics over prediction rows, as
//! `sgvlm eval` computes them (same summary keys, same per-sample metrics, same treatment of bad rows).

use crate::convert::{self, protocol as protocol_arg, schema as schema_arg, settings, to_json_value, to_py};
use pyo3::exceptions::{PyUserWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use sgvlm_eval::ag_sgdet::{self, AgConfig, AgSummary};
use sgvlm_eval::strict_eval::{self, TripletConfig};
use sgvlm_eval::{EvalRecord, RecordError};
use sgvlm_graph::Schema;
use std::ffi::CString;

/// One row: a dict (`{"content": GT, "predict": prediction, "gen_time_sec"?: s}`, with the reference's
/// `conversations`/`messages` fallbacks) or a JSON line holding one.
fn record(row: &Bound<'_, PyAny>) -> PyResult<(EvalRecord, Option<RecordError>)> {
    if let Ok(s) = row.cast::<PyString>() {
        return Ok(EvalRecord::from_json_line(s.to_cow()?.trim()));
    }
    if row.is_instance_of::<PyDict>() {
        return Ok(EvalRecord::from_value(&to_json_value("row", row)?));
    }
    Ok((EvalRecord::default(), Some(RecordError::NotObject)))
}

/// Scores prediction rows and summarises them.
///
/// `rows`: dicts `{"content": GT, "predict": prediction, "gen_time_sec"?: seconds}` (or JSON strings of them).
/// `schema="triplet"`: strict PSG/PVSG metrics; `"ag"`: Action Genome SGDET R@K/P@K/F1@K/mR@K. `protocol="paper"`
/// reproduces the reference scripts, `"sound"` fixes their flaws (see the README's protocol table); `iou` is the
/// box-match threshold. Returns `{"summary": {…}, "per_sample": [{…}, …]}` with the keys of `sgvlm eval` (triplet
/// rows carry the oracle's metric keys plus `"status"`). A bad row (not an object, texts missing or not strings)
/// is scored as a missing input, as the CLI does, with a `UserWarning` naming its index. Raises `ValueError` for a
/// bad argument, or (triplet, paper protocol) a row whose IoU is NaN, where the reference run aborts.
#[pyfunction]
#[pyo3(signature = (rows, schema = "triplet", protocol = "paper", iou = 0.5, **settings_kw))]
pub fn evaluate<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    schema: &str,
    protocol: &str,
    iou: f64,
    settings_kw: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let schema = schema_arg(schema)?;
    let protocol = protocol_arg(protocol)?;
    if !(iou.is_finite() && (0.0..=1.0).contains(&iou)) {
        return Err(PyValueError::new_err(format!("iou must be a number in [0, 1], not {iou}")));
    }
    let gate = settings(settings_kw)?.gate;
    let read = convert::collect(rows, "rows", record)?;
    let mut records = Vec::with_capacity(read.len());
    for (i, (r, err)) in read.into_iter().enumerate() {
        if let Some(e) = err {
            let msg = CString::new(format!("row {i}: {e}; scored as a missing input")).unwrap_or_default();
            PyErr::warn(py, &py.get_type::<PyUserWarning>(), &msg, 1)?;
        }
        records.push(r);
    }
    let out = PyDict::new(py);
    match schema {
        Schema::Triplet => {
            let cfg = TripletConfig { iou_thr: iou, protocol, gate };
            let (metrics, summary) = convert::guarded(py, || {
                strict_eval::evaluate_all(&records, &cfg).map(|m| {
                    let times: Vec<f64> = records.iter().filter_map(|r| r.gen_time_sec).collect();
                    let s = strict_eval::Summary::of(&m, &times, &cfg);
                    (m, s)
                })
            })?
            .map_err(|(i, e)| {
                PyValueError::new_err(format!("row {i}: {e}\nhint: `protocol=\"sound\"` scores such rows"))
            })?;
            out.set_item("summary", to_py(py, &summary)?)?;
            let per = PyList::empty(py);
            for m in &metrics {
                let d = to_py(py, m)?;
                d.set_item("status", to_py(py, &m.status)?)?;
                per.append(d)?;
            }
            out.set_item("per_sample", per)?;
        }
        Schema::Ag => {
            let cfg = AgConfig { iou_thr: iou, protocol, gate };
            let (samples, summary) = convert::guarded(py, || {
                let s = ag_sgdet::evaluate_all(&records, &cfg);
                let sum = AgSummary::of(&s, &cfg);
                (s, sum)
            })?;
            out.set_item("summary", to_py(py, &summary)?)?;
            out.set_item("per_sample", to_py(py, &samples)?)?;
        }
    }
    Ok(out)
}
