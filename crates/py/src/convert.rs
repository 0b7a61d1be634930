//! The seams between Python values and sgvlm's types: argument names (schema, protocol, layout), settings given as
//! keyword arguments, completions given as strings or chat messages, serde values both ways, and the guard that
//! runs Rust work without the GIL and turns a panic into an ordinary exception.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use sgvlm_eval::rewards::RewardConfig;
use sgvlm_eval::Protocol;
use sgvlm_graph::Schema;

/// `"triplet"` (also `psg`, `pvsg`) or `"ag"` (also `action-genome`, `rel_pairs`), as the graph crate reads them.
pub fn schema(name: &str) -> PyResult<Schema> {
    name.parse::<Schema>().map_err(PyValueError::new_err)
}

/// `"paper"` or `"sound"`.
pub fn protocol(name: &str) -> PyResult<Protocol> {
    match name.to_ascii_lowercase().as_str() {
        "paper" => Ok(Protocol::Paper),
        "sound" => Ok(Protocol::Sound),
        _ => Err(PyValueError::new_err(format!("unknown protocol `{name}` (expected `paper` or `sound`)"))),
    }
}

/// Reward (and gate) settings from keyword arguments named like the reference's environment variables, in any
/// case: `img_w=800`, `EDGE_IOU_THRESH=0.7`, `ag_enforce_person_subject=False`. Unknown names and unreadable values
/// raise `ValueError` with the messages of `sgvlm reward`.
pub fn settings(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<RewardConfig> {
    let mut cfg = RewardConfig::default();
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract().map_err(|_| PyTypeError::new_err("setting names must be strings"))?;
        let value = setting_text(&key, &v)?;
        cfg.set(&key, &value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(cfg)
}

/// A setting's value as the text an environment variable would hold.
fn setting_text(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(if b.is_true() { "1" } else { "0" }.to_string());
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyString>() {
        return Ok(v.str()?.to_cow()?.into_owned());
    }
    Err(PyTypeError::new_err(format!("{key}: expected a number, string or bool, found {}", v.get_type().name()?)))
}

/// The text of a completion or solution as the reference's `_coerce_completion_text` reads it: a string; a message
/// list (the first message's `content`); a message dict (its `content`). `None` for anything else, which the
/// reference scores as a failed item.
pub fn message_text(item: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = item.cast::<PyString>() {
        return s.to_cow().ok().map(|c| c.into_owned());
    }
    let message = if let Ok(l) = item.cast::<PyList>() {
        l.get_item(0).ok()?
    } else if let Ok(t) = item.cast::<PyTuple>() {
        t.get_item(0).ok()?
    } else {
        item.clone()
    };
    let content = message.cast::<PyDict>().ok()?.get_item(pyo3::intern!(item.py(), "content")).ok()??;
    let s = content.cast::<PyString>().ok()?;
    s.to_cow().ok().map(|c| c.into_owned())
}

/// Every item of an iterable, converted.
pub fn collect<'py, T>(
    items: &Bound<'py, PyAny>,
    what: &str,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<T>> {
    if items.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!("{what} must be a list, not a single string")));
    }
    let iter = items.try_iter().map_err(|_| PyTypeError::new_err(format!("{what} must be iterable")))?;
    let mut out = Vec::with_capacity(items.len().unwrap_or(0));
    for item in iter {
        out.push(f(&item?)?);
    }
    Ok(out)
}

/// A Rust value as plain Python objects (dicts in field order, lists, str, int, float, bool, None).
pub fn to_py<'py, T: serde::Serialize + ?Sized>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let obj = pythonize::pythonize(py, v)
        .map_err(|e| PyRuntimeError::new_err(format!("internal: cannot convert result: {e}")))?;
    lists_for_tuples(obj)
}

/// pythonize writes fixed-size arrays (`[u64; 26]`) as tuples; JSON and the CLI have lists.
fn lists_for_tuples(obj: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        let items = t.iter().map(lists_for_tuples).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(obj.py(), items)?.into_any());
    }
    if let Ok(l) = obj.cast::<PyList>() {
        for i in 0..l.len() {
            let item = l.get_item(i)?;
            if item.is_instance_of::<PyTuple>() || item.is_instance_of::<PyList>() || item.is_instance_of::<PyDict>() {
                l.set_item(i, lists_for_tuples(item)?)?;
            }
        }
    } else if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            if v.is_instance_of::<PyTuple>() || v.is_instance_of::<PyList>() || v.is_instance_of::<PyDict>() {
                d.set_item(k, lists_for_tuples(v)?)?;
            }
        }
    }
    Ok(obj)
}

/// A JSON value from plain Python objects.
pub fn to_json_value(what: &str, v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    pythonize::depythonize(v).map_err(|e| PyValueError::new_err(format!("{what}: not JSON-like data: {e}")))
}

/// Runs `f` without the GIL (other Python threads keep running), turning a panic into `RuntimeError` so that no
/// input can take the interpreter down. pyo3 would raise its `PanicException`, a `BaseException` that ordinary
/// `except Exception` handlers (and training loops) do not catch.
pub fn guarded<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let r = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    r.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        PyRuntimeError::new_err(format!("sgvlm internal error (please report with the input): {msg}"))
    })
}
