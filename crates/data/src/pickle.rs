//! A small, safe reader for the Python pickles Action Genome ships, numpy arrays included.
//!
//! Why our own: `serde-pickle` decodes plain containers but has no notion of the numpy reconstruction protocol
//! (`numpy.core.multiarray._reconstruct` + `BUILD` with `(version, shape, dtype, fortran, raw bytes)` state, and
//! `numpy.dtype(...)` + `BUILD`), which `person_bbox.pkl` uses for every box array. The pickle VM is small, so this
//! module runs it directly over a closed set of opcodes (protocols 0–5 binary forms) and **never executes code**:
//! a global is only a name, and `REDUCE`/`BUILD` on the few known numpy globals produce [`Value::Array`]; any other
//! callable yields an opaque [`Value::Object`]. Every malformed input is an error, never a panic.
//!
//! Arrays keep their shape and are converted to `f64` (dtypes `f2/f4/f8`, `i1..i8`, `u1..u8`, `b1`, either byte
//! order). Python 2 `str` (BINSTRING) values decode as Latin-1, as `pickle.load(…, encoding="latin1")` would.
//!
//! Limitation: memoised values are copies, so a mutable container that is referenced twice and filled after its
//! first reference reads back as it was when memoised (Action Genome's files never share containers).

pub mod write;

use std::collections::HashMap;

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A numpy array as `f64`, row-major.
    Array {
        shape: Vec<usize>,
        data: Vec<f64>,
    },
    /// A numpy dtype descriptor such as `f4` (with its byte order once built).
    Dtype {
        descr: String,
        big_endian: bool,
    },
    /// A reference to a global (`module.name`) that was not called.
    Global(String),
    /// The result of calling anything else; its arguments are kept for inspection.
    Object {
        callable: String,
        args: Box<Value>,
    },
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Entries of a dict.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Items of a list or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Looks up a string key in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// A number as `f64` (ints, floats, bools and 0-d arrays).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Array { shape, data } if shape.is_empty() && data.len() == 1 => Some(data[0]),
            _ => None,
        }
    }

    /// Python truthiness for the values a record can hold.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(v) | Value::Tuple(v) => !v.is_empty(),
            Value::Dict(d) => !d.is_empty(),
            Value::Array { data, .. } => !data.is_empty(),
            _ => true,
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    #[error("unexpected end of data at byte {0}")]
    Eof(usize),
    #[error("unsupported opcode 0x{op:02x} at byte {at}")]
    Opcode { op: u8, at: usize },
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
}

struct Vm<'a> {
    b: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

const NUMPY_RECONSTRUCT: [&str; 2] = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"];
const NUMPY_SCALAR: [&str; 2] = ["numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"];

impl<'a> Vm<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(PickleError::Eof(self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let at = self.pos;
        usize::try_from(self.uint(n)?).map_err(|_| PickleError::Malformed { at, what: "length" })
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let at = self.pos;
        let rest = &self.b[self.pos..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or(PickleError::Eof(at))?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| PickleError::Malformed { at, what: "global name" })
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or(PickleError::Malformed { at: self.pos, what: "stack underflow" })
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or(PickleError::Malformed { at: self.pos, what: "no mark" })?;
        if m > self.stack.len() {
            return Err(PickleError::Malformed { at: self.pos, what: "mark above stack" });
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed { at, what: "stack underflow" })
    }

    fn str(&mut self, n: usize) -> Result<Value, PickleError> {
        let at = self.pos;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map(Value::Str).map_err(|_| PickleError::Malformed { at, what: "utf-8" })
    }

    fn extend(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let at = self.pos;
        match self.top()? {
            Value::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(PickleError::Malformed { at, what: "append to a non-list" }),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let at = self.pos;
        if items.len() % 2 != 0 {
            return Err(PickleError::Malformed { at, what: "odd number of dict items" });
        }
        let Value::Dict(d) = self.top()? else {
            return Err(PickleError::Malformed { at, what: "setitem on a non-dict" });
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match d.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => d.push((k, v)),
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?;
                } // PROTO
                0x95 => {
                    self.take(8)?;
                } // FRAME
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.len(1)? } else { self.len(4)? };
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err(PickleError::Malformed { at, what: "integer beyond 64 bits" });
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in bytes.iter().enumerate() {
                        v |= i64::from(x) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let raw = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(raw);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                0x8c => {
                    let n = self.len(1)?;
                    let v = self.str(n)?;
                    self.stack.push(v);
                }
                b'X' => {
                    let n = self.len(4)?;
                    let v = self.str(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.len(8)?;
                    let v = self.str(n)?;
                    self.stack.push(v);
                }
                b'U' | b'T' => {
                    let n = if op == b'U' { self.len(1)? } else { self.len(4)? };
                    let s = self.take(n)?.iter().map(|&c| char::from(c)).collect();
                    self.stack.push(Value::Str(s));
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => self.len(1)?,
                        b'B' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v));
                }
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b'l' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::List(v));
                }
                b't' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::Tuple(v));
                }
                b'd' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::Dict(Vec::new()));
                    self.set_items(v)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(PickleError::Malformed { at, what: "stack underflow" });
                    }
                    let v = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(v));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend(vec![v])?;
                }
                b'e' => {
                    let v = self.pop_mark()?;
                    self.extend(v)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let v = self.pop_mark()?;
                    self.set_items(v)?;
                }
                0x94 => {
                    let v = self.top()?.clone();
                    self.memo.insert(self.memo.len() as u64, v);
                }
                b'q' | b'r' => {
                    let k = if op == b'q' { self.uint(1)? } else { self.uint(4)? };
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                b'h' | b'j' => {
                    let k = if op == b'h' { self.uint(1)? } else { self.uint(4)? };
                    let v = self.memo.get(&k).cloned().ok_or(PickleError::Malformed { at, what: "memo key" })?;
                    self.stack.push(v);
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    self.stack.push(Value::Global(format!("{m}.{n}")));
                }
                0x93 => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    match (m.as_str(), n.as_str()) {
                        (Some(m), Some(n)) => self.stack.push(Value::Global(format!("{m}.{n}"))),
                        _ => return Err(PickleError::Malformed { at, what: "STACK_GLOBAL names" }),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(call(callable, args, at)?);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    self.stack.push(build(obj, state, at)?);
                }
                _ => return Err(PickleError::Opcode { op, at }),
            }
        }
    }
}

fn call(callable: Value, args: Value, at: usize) -> Result<Value, PickleError> {
    let Value::Global(name) = callable else { return Err(PickleError::Malformed { at, what: "call of a non-global" }) };
    let a = args.as_seq().unwrap_or(&[]);
    if NUMPY_RECONSTRUCT.contains(&name.as_str()) {
        return Ok(Value::Array { shape: vec![0], data: Vec::new() });
    }
    if name == "_codecs.encode" {
        // Protocol 2 writes `bytes` as `_codecs.encode(str, "latin1")`.
        if let (Some(Value::Str(s)), Some("latin1" | "latin-1")) = (a.first(), a.get(1).and_then(Value::as_str)) {
            let bytes: Option<Vec<u8>> = s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
            return bytes.map(Value::Bytes).ok_or(PickleError::Malformed { at, what: "latin-1 bytes" });
        }
    }
    if (name == "__builtin__.bytes" || name == "builtins.bytes") && a.is_empty() {
        return Ok(Value::Bytes(Vec::new()));
    }
    if name == "numpy.dtype" {
        let descr = a.first().and_then(Value::as_str).ok_or(PickleError::Malformed { at, what: "dtype name" })?;
        return Ok(Value::Dtype { descr: descr.to_owned(), big_endian: false });
    }
    if NUMPY_SCALAR.contains(&name.as_str()) {
        if let (Some(Value::Dtype { descr, big_endian }), Some(Value::Bytes(raw))) = (a.first(), a.get(1)) {
            let data = decode(descr, *big_endian, raw).ok_or(PickleError::Malformed { at, what: "numpy scalar" })?;
            return Ok(Value::Array { shape: Vec::new(), data });
        }
        return Err(PickleError::Malformed { at, what: "numpy scalar" });
    }
    Ok(Value::Object { callable: name, args: Box::new(args) })
}

fn build(obj: Value, state: Value, at: usize) -> Result<Value, PickleError> {
    match obj {
        Value::Dtype { descr, .. } => {
            let order = state.as_seq().and_then(|s| s.get(1)).and_then(Value::as_str).unwrap_or("|");
            Ok(Value::Dtype { descr, big_endian: order == ">" })
        }
        Value::Array { .. } => {
            let bad = PickleError::Malformed { at, what: "ndarray state" };
            let s = state.as_seq().ok_or(bad.clone())?;
            let [_, shape, Value::Dtype { descr, big_endian }, fortran, raw] = s else { return Err(bad) };
            let shape: Vec<usize> = shape
                .as_seq()
                .ok_or(bad.clone())?
                .iter()
                .map(|d| match d {
                    Value::Int(i) => usize::try_from(*i).ok(),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or(bad.clone())?;
            let raw: &[u8] = match raw {
                Value::Bytes(b) => b,
                _ => return Err(bad),
            };
            if fortran.truthy() && shape.len() > 1 {
                return Err(PickleError::Malformed { at, what: "Fortran-ordered arrays are not supported" });
            }
            let data = decode(descr, *big_endian, raw).ok_or(bad.clone())?;
            let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(bad.clone())?;
            if n != data.len() {
                return Err(bad);
            }
            Ok(Value::Array { shape, data })
        }
        other => Ok(other),
    }
}

/// Decodes raw numpy bytes of dtype `descr` (`f4`, `<f8`, `i8`, `u1`, `b1`, …) into `f64`s.
fn decode(descr: &str, big_endian: bool, raw: &[u8]) -> Option<Vec<f64>> {
    let (big, d) = match descr.as_bytes().first() {
        Some(b'>') => (true, &descr[1..]),
        Some(b'<' | b'=' | b'|') => (false, &descr[1..]),
        _ => (big_endian, descr),
    };
    let kind = d.as_bytes().first().copied()?;
    let size: usize = d.get(1..)?.parse().ok()?;
    if size == 0 || raw.len() % size != 0 {
        return None;
    }
    raw.chunks_exact(size)
        .map(|c| {
            let mut a = [0u8; 8];
            if big {
                a[8 - size..].copy_from_slice(c);
                a.reverse();
            } else {
                a[..size].copy_from_slice(c);
            }
            let bits = u64::from_le_bytes(a);
            let sign_extend = |bits: u64| {
                let shift = 64 - 8 * size as u32;
                ((bits << shift) as i64 >> shift) as f64
            };
            match (kind, size) {
                (b'f', 8) => Some(f64::from_bits(bits)),
                (b'f', 4) => Some(f64::from(f32::from_bits(bits as u32))),
                (b'f', 2) => Some(f16_to_f64(bits as u16)),
                (b'i', 1 | 2 | 4 | 8) => Some(sign_extend(bits)),
                (b'u' | b'b', 1 | 2 | 4 | 8) => Some(bits as f64),
                _ => None,
            }
        })
        .collect()
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Reads one pickle from `bytes`.
pub fn from_slice(bytes: &[u8]) -> Result<Value, PickleError> {
    Vm { b: bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }.run()
}

#[cfg(test)]
mod tests;
