//! Markdown tables: the summary (any serialisable summary, top-level keys in serialisation order, nested objects
//! flattened as `outer.inner`) and the per-predicate recall/precision table.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sgvlm_eval::strict_eval::PredicateStats;

/// A table cell: floats with 4 decimals, `|` escaped.
fn cell(v: &Value) -> String {
    let s = match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    };
    s.replace('|', "\\|").replace('\n', " ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), cell(other))),
    }
}

/// A JSON object's entries in document order (whatever map `serde_json` was built with).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `| metric | value |` rows for every (flattened) key of a serialisable summary, top-level keys in field order.
pub fn summary_table<T: serde::Serialize>(title: &str, summary: &T) -> Result<String, serde_json::Error> {
    let ordered: Ordered = serde_json::from_str(&serde_json::to_string(summary)?)?;
    let mut rows = Vec::new();
    for (k, v) in &ordered.0 {
        flatten(k, v, &mut rows);
    }
    let mut s = format!("# {title}\n\n| metric | value |\n|---|---:|\n");
    for (k, v) in rows {
        s.push_str(&format!("| {} | {v} |\n", k.replace('|', "\\|")));
    }
    Ok(s)
}

/// Per-predicate counts with recall and precision (`–` where undefined).
pub fn per_predicate_table(stats: &[PredicateStats]) -> String {
    let pct = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{:.1}", 100.0 * v));
    let mut s = String::from(
        "# Per-predicate recall and precision (strict matching)\n\n\
         | predicate | GT | GT matched | recall % | predicted | predicted matched | precision % |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in stats {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&Value::from(p.predicate.as_str())),
            p.gt,
            p.gt_matched,
            pct(p.recall()),
            p.pred,
            p.pred_matched,
            pct(p.precision())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        #[derive(serde::Serialize)]
        struct S {
            num_samples: u32,
            time_sec: Value,
            #[serde(rename = "F1")]
            f1: f64,
        }
        let v = S { num_samples: 3, time_sec: serde_json::json!({"N": 2, "phys": "(1.5 ± 0.7) s"}), f1: 0.123456 };
        assert_eq!(
            summary_table("Summary", &v).unwrap(),
            "# Summary\n\n| metric | value |\n|---|---:|\n| num_samples | 3 |\n| time_sec.N | 2 |\n\
             | time_sec.phys | (1.5 ± 0.7) s |\n| F1 | 0.1235 |\n"
        );
        let stats = [PredicateStats { predicate: "a|b".into(), gt: 4, gt_matched: 1, pred: 0, pred_matched: 0 }];
        assert!(per_predicate_table(&stats).ends_with("| a\\|b | 4 | 1 | 25.0 | 0 | 0 | – |\n"));
    }
}
