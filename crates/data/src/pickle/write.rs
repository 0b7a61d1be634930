//! A minimal pickle *writer* for the subset [`super::from_slice`] reads back: what the synthetic Action Genome
//! pickles need, so that `sgvlm data synth` writes them without Python.
//!
//! Protocol 3 (what Python 3.0–3.7 writes by default; every later Python reads it). [`Value::Array`] is written as
//! numpy does it — `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')` then `BUILD` with
//! `(1, shape, dtype('f4'), False, raw little-endian bytes)` — so `pickle.load` in Python with numpy yields a
//! `float32` array. Values are written without memoisation (no `PUT`/`GET`), which any unpickler accepts.
//! [`Value::Global`] and [`Value::Object`] have no faithful encoding here and are an error.

use super::Value;

/// A value this writer cannot encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot pickle {0}")]
pub struct WriteError(&'static str);

struct W {
    out: Vec<u8>,
}

impl W {
    fn op(&mut self, op: u8) {
        self.out.push(op);
    }

    fn unicode(&mut self, s: &str) {
        self.op(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        if b.len() < 256 {
            self.op(b'C');
            self.out.push(b.len() as u8);
        } else {
            self.op(b'B');
            self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
    }

    fn int(&mut self, i: i64) {
        if let Ok(v) = u8::try_from(i) {
            self.op(b'K');
            self.out.push(v);
        } else if let Ok(v) = u16::try_from(i) {
            self.op(b'M');
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(i) {
            self.op(b'J');
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            self.op(0x8a);
            self.out.push(8);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.op(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }

    fn array(&mut self, shape: &[usize], data: &[f64]) -> Result<(), WriteError> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(WriteError("an oversized array"))?;
        if n != data.len() {
            return Err(WriteError("an array whose shape does not match its data"));
        }
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.int(0);
        self.op(0x85); // TUPLE1: (0,)
        self.bytes(b"b");
        self.op(0x87); // TUPLE3
        self.op(b'R');
        // State: (1, shape, dtype, False, raw).
        self.op(b'(');
        self.int(1);
        self.op(b'(');
        for &d in shape {
            self.int(i64::try_from(d).map_err(|_| WriteError("an oversized array"))?);
        }
        self.op(b't');
        self.global("numpy", "dtype");
        self.unicode("f4");
        self.op(0x89);
        self.op(0x88);
        self.op(0x87);
        self.op(b'R');
        self.op(b'(');
        self.int(3);
        self.unicode("<");
        for _ in 0..3 {
            self.op(b'N');
        }
        for v in [-1i64, -1, 0] {
            self.int(v);
        }
        self.op(b't');
        self.op(b'b');
        self.op(0x89);
        let raw: Vec<u8> = data.iter().flat_map(|&f| (f as f32).to_le_bytes()).collect();
        self.bytes(&raw);
        self.op(b't');
        self.op(b'b');
        Ok(())
    }

    fn value(&mut self, v: &Value) -> Result<(), WriteError> {
        match v {
            Value::None => self.op(b'N'),
            Value::Bool(true) => self.op(0x88),
            Value::Bool(false) => self.op(0x89),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.op(b'G');
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.unicode(s),
            Value::Bytes(b) => self.bytes(b),
            Value::List(items) => {
                self.op(b']');
                if !items.is_empty() {
                    self.op(b'(');
                    for it in items {
                        self.value(it)?;
                    }
                    self.op(b'e');
                }
            }
            Value::Tuple(items) => {
                self.op(b'(');
                for it in items {
                    self.value(it)?;
                }
                self.op(b't');
            }
            Value::Dict(entries) => {
                self.op(b'}');
                if !entries.is_empty() {
                    self.op(b'(');
                    for (k, v) in entries {
                        self.value(k)?;
                        self.value(v)?;
                    }
                    self.op(b'u');
                }
            }
            Value::Array { shape, data } => self.array(shape, data)?,
            Value::Dtype { .. } => return Err(WriteError("a bare dtype")),
            Value::Global(_) => return Err(WriteError("a global reference")),
            Value::Object { .. } => return Err(WriteError("an opaque object")),
        }
        Ok(())
    }
}

/// Encodes `v` as a protocol-3 pickle.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, WriteError> {
    let mut w = W { out: vec![0x80, 3] };
    w.value(v)?;
    w.op(b'.');
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::from_slice;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn round_trips_through_the_reader() {
        let v = Value::Dict(vec![
            (
                s("a.mp4/000001.png"),
                Value::List(vec![Value::Dict(vec![
                    (s("class"), s("cup/glass/bottle")),
                    (
                        s("bbox"),
                        Value::Tuple(vec![
                            Value::Float(1.5),
                            Value::Float(2.0),
                            Value::Float(30.0),
                            Value::Float(4.25),
                        ]),
                    ),
                    (s("visible"), Value::Bool(true)),
                    (s("n"), Value::Int(-70000)),
                    (s("big"), Value::Int(1 << 40)),
                    (s("none"), Value::None),
                    (s("empty"), Value::List(vec![])),
                ])]),
            ),
            (s("person"), Value::Array { shape: vec![1, 4], data: vec![24.5, 70.5, 258.5, 267.5] }),
            (s("raw"), Value::Bytes(vec![0; 300])),
        ]);
        assert_eq!(from_slice(&to_vec(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn exact_bytes_of_a_small_value() {
        let v = Value::Tuple(vec![Value::Int(1), s("é"), Value::Bool(false)]);
        assert_eq!(to_vec(&v).unwrap(), b"\x80\x03(K\x01X\x02\x00\x00\x00\xc3\xa9\x89t.".to_vec());
    }

    #[test]
    fn unencodable_values_are_errors() {
        assert_eq!(
            to_vec(&Value::Global("os.system".into())).unwrap_err().to_string(),
            "cannot pickle a global reference"
        );
        let bad = Value::Array { shape: vec![2, 4], data: vec![0.0; 4] };
        assert_eq!(to_vec(&bad).unwrap_err(), WriteError("an array whose shape does not match its data"));
    }
}
