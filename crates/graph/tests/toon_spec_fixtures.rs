//! The official TOON v4.0 encode fixtures (read from `shared/testdata/toon-spec`, not vendored) against
//! [`sgvlm_graph::toon::spec`], and every document we produce decoded back by the `toon-format` crate.

mod common;

use serde::Deserialize;
use sgvlm_graph::toon::spec::{encode_value, Delimiter, EncodeOptions, SpecError, TValue};

#[derive(Deserialize)]
struct FixtureFile {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    input: TValue,
    expected: Option<String>,
    #[serde(default)]
    should_error: bool,
    #[serde(default)]
    options: CaseOptions,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CaseOptions {
    delimiter: Option<String>,
    indent_size: Option<usize>,
}

impl CaseOptions {
    fn encode(&self) -> Option<EncodeOptions> {
        let delimiter = match self.delimiter.as_deref() {
            None | Some(",") => Delimiter::Comma,
            Some("\t") => Delimiter::Tab,
            Some("|") => Delimiter::Pipe,
            Some(_) => return None,
        };
        Some(EncodeOptions { indent: self.indent_size.unwrap_or(2), delimiter })
    }
}

/// JSON-model equality: object keys compared as sets (tabular decoding reorders to the header), numbers by value.
fn same_model(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_model(p, q)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_model(v, w)))
        }
        _ => a == b,
    }
}

/// At least this many of the 173 v4.0 encode cases must pass (observed: all of them).
const MIN_PASSED: usize = 173;

#[test]
fn official_encode_fixtures() {
    let dir = common::shared_dir().join("testdata/toon-spec/tests/fixtures/encode");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 9, "expected the 9 v4.0 encode fixture files in {}", dir.display());
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let file: FixtureFile = serde_json::from_str(&text).unwrap();
        let (mut p, mut s) = (0, 0);
        for case in &file.tests {
            let label = format!("{}: {}", path.file_name().unwrap().to_string_lossy(), case.name);
            let (Some(opts), Some(expected), false) = (case.options.encode(), &case.expected, case.should_error) else {
                s += 1;
                continue;
            };
            match encode_value(&case.input, &opts) {
                Err(SpecError::Unsupported(why)) => {
                    println!("skip {label}: {why}");
                    s += 1;
                }
                Ok(got) if got == *expected => {
                    p += 1;
                    let dec = toon_format::DecodeOptions::new()
                        .with_strict(true)
                        .with_indent(toon_format::Indent::Spaces(opts.indent));
                    match toon_format::decode::<serde_json::Value>(&got, &dec) {
                        Ok(v) if same_model(&v, &case.input.to_json()) => {}
                        other => failures.push(format!("{label}: toon-format decoded {other:?}")),
                    }
                }
                Ok(got) => failures.push(format!("{label}:\n  expected {expected:?}\n  got      {got:?}")),
            }
        }
        println!("{}: {p} passed, {s} skipped", path.file_name().unwrap().to_string_lossy());
        passed += p;
        skipped += s;
    }
    println!("total: {passed} passed, {skipped} skipped, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= MIN_PASSED, "only {passed} passed");
}
