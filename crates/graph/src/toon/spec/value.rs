//! [`TValue`], an ordered JSON value: the encoder's input, independent of `serde_json`'s map ordering.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt;

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum TValue {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<TValue>),
    Obj(Vec<(String, TValue)>),
}

impl TValue {
    /// A number from an `f64`; NaN and ±∞ become `Null` (spec §3).
    pub fn from_f64(f: f64) -> TValue {
        Number::from_f64(f).map_or(TValue::Null, TValue::Num)
    }

    /// The `serde_json` form (its key order then follows `serde_json`'s map).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            TValue::Null => J::Null,
            TValue::Bool(b) => J::Bool(*b),
            TValue::Num(n) => J::Number(n.clone()),
            TValue::Str(s) => J::String(s.clone()),
            TValue::Arr(a) => J::Array(a.iter().map(TValue::to_json).collect()),
            TValue::Obj(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    pub(super) fn is_primitive(&self) -> bool {
        !matches!(self, TValue::Arr(_) | TValue::Obj(_))
    }
}

impl From<&serde_json::Value> for TValue {
    /// Keys come in the map's iteration order: insertion order with `preserve_order`, sorted without it.
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => TValue::Null,
            J::Bool(b) => TValue::Bool(*b),
            J::Number(n) => TValue::Num(n.clone()),
            J::String(s) => TValue::Str(s.clone()),
            J::Array(a) => TValue::Arr(a.iter().map(TValue::from).collect()),
            J::Object(m) => TValue::Obj(m.iter().map(|(k, v)| (k.clone(), v.into())).collect()),
        }
    }
}

struct TValueVisitor;

impl<'de> Visitor<'de> for TValueVisitor {
    type Value = TValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<TValue, E> {
        Ok(TValue::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<TValue, E> {
        Ok(TValue::Num(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<TValue, E> {
        Ok(TValue::Num(n.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<TValue, E> {
        Ok(TValue::from_f64(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<TValue, E> {
        Ok(TValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<TValue, E> {
        Ok(TValue::Str(s))
    }
    fn visit_unit<E>(self) -> Result<TValue, E> {
        Ok(TValue::Null)
    }
    fn visit_none<E>(self) -> Result<TValue, E> {
        Ok(TValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<TValue, D::Error> {
        TValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TValue, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(TValue::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TValue, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, TValue>()? {
            out.push((k, v));
        }
        Ok(TValue::Obj(out))
    }
}

impl<'de> Deserialize<'de> for TValue {
    /// Order-preserving: object keys keep their document order whatever `serde_json`'s features are.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TValueVisitor)
    }
}
