//! PSG in R1-SGG's row form (the official `psg.json` is [`super::psg_json`]; a root holding it is read by it) (the Hugging Face export `JosephZ/psg_{train,test}_sg` that the reference consumes):
//! one row per image with `image_id`, `objects`, `relationships` and the image.
//!
//! Files: `{split}_annotations.json` (a JSON list) or `{split}_annotations.jsonl` / `{split}.jsonl` (JSON lines),
//! under `ROOT/annotations/` or `ROOT/`, for `split` ∈ {train, test}.
//!
//! Rules (the reference's `prepare_original_psg_sft.py`):
//! - `objects`/`relationships` are lists or JSON strings holding them; objects get ids 1..n in list order, the name
//!   is the raw id minus its last `.`-suffix, the box is xyxy in native pixels ([`sgvlm_graph::json::from_r1sgg`]);
//! - a relationship whose subject or object names no object is dropped (as the reference does) and counted in
//!   [`PsgRecord::dangling`]; predicates are whitespace-collapsed with spaces → `-` (`standing on` → `standing-on`);
//! - the image is `image` (base64 text, `{"bytes": base64 | [ints], "path": …}`, or a path) or `image_path`; a
//!   relative path is looked up under `ROOT` (the reference repo-relative form), then beside the annotation file.
//!
//! A row of the wrong shape is a [`RecordError`] naming the file and the row (JSON lines: line number; a list:
//! index). Embedded images are decoded from base64 and held in memory until the record is processed.

use super::{ReadError, RecordError, Split};
use base64::Engine;
use serde_json::Value;
use sgvlm_graph::TripletGraph;
use std::path::{Path, PathBuf};

/// Where a record's pixels are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// One image's raw graph (native pixels, before scaling and cleaning).
#[derive(Debug, Clone, PartialEq)]
pub struct PsgRecord {
    pub image_id: String,
    pub split: Split,
    pub graph: TripletGraph,
    pub image: ImageSource,
    /// Relationships dropped because an endpoint names no object.
    pub dangling: usize,
}

/// `standing  on` → `standing-on`.
pub fn hyphen_predicate(p: &str) -> String {
    p.split_whitespace().collect::<Vec<_>>().join("-")
}

fn list_of(row: &serde_json::Map<String, Value>, field: &str) -> Result<Vec<Value>, String> {
    match row.get(field) {
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Array(v)) => Ok(v),
            Ok(_) => Err(format!("`{field}` holds JSON that is not a list")),
            Err(e) => Err(format!("`{field}` (a string holding JSON): {e}")),
        },
        Some(Value::Array(v)) => Ok(v.clone()),
        Some(_) => Err(format!("`{field}` is not a list")),
        None => Err(format!("missing `{field}`")),
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let t = t.split_once(";base64,").map_or(t.as_str(), |(_, d)| d);
    base64::engine::general_purpose::STANDARD.decode(t).map_err(|e| format!("`image` is not base64: {e}"))
}

fn image_of(row: &serde_json::Map<String, Value>, dirs: &[&Path]) -> Result<ImageSource, String> {
    let find = |p: &str| dirs.iter().map(|d| d.join(p)).find(|c| c.is_file());
    let path = |p: &str| ImageSource::Path(find(p).unwrap_or_else(|| dirs.first().map_or(p.into(), |d| d.join(p))));
    match row.get("image") {
        Some(Value::Object(o)) => match (o.get("bytes"), o.get("path")) {
            (Some(Value::String(s)), _) => b64(s).map(ImageSource::Bytes),
            (Some(Value::Array(a)), _) => a
                .iter()
                .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect::<Option<Vec<u8>>>()
                .map(ImageSource::Bytes)
                .ok_or_else(|| "`image.bytes` is not a list of bytes".to_owned()),
            (_, Some(Value::String(p))) => Ok(path(p)),
            _ => Err("`image` has neither `bytes` nor `path`".into()),
        },
        Some(Value::String(s)) if find(s).is_some() => Ok(path(s)),
        Some(Value::String(s)) => b64(s).map(ImageSource::Bytes),
        _ => match row.get("image_path") {
            Some(Value::String(p)) => Ok(path(p)),
            _ => Err("no `image` or `image_path`".into()),
        },
    }
}

/// Builds one record from a row; a relative image path is looked up in `dirs` in order (the first when absent).
pub fn record(row: &Value, split: Split, dirs: &[&Path]) -> Result<PsgRecord, String> {
    let Value::Object(m) = row else { return Err("row is not a JSON object".into()) };
    let image_id = match m.get("image_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("missing `image_id`".into()),
    };
    let objects = list_of(m, "objects")?;
    let ids: Vec<Option<&str>> = objects.iter().map(|o| o.get("id").and_then(Value::as_str)).collect();
    let rels = list_of(m, "relationships")?;
    let (kept, dropped): (Vec<Value>, Vec<Value>) = rels.into_iter().partition(|r| {
        let end = |k: &str| r.get(k).and_then(Value::as_str).is_some_and(|id| ids.contains(&Some(id)));
        !r.is_object() || (end("subject") && end("object"))
    });
    let doc = serde_json::json!({"objects": objects, "relationships": kept});
    let mut graph = sgvlm_graph::json::from_r1sgg(&doc).map_err(|e| e.to_string())?;
    for r in &mut graph.relations {
        r.pred = hyphen_predicate(&r.pred);
    }
    let image = image_of(m, dirs)?;
    Ok(PsgRecord { image_id, split, graph, image, dangling: dropped.len() })
}

/// Rows of a file, each with where it is (`row 3`, `line 4`) and its JSON or why it is not JSON.
type Rows = Vec<(String, Result<Value, String>)>;

fn rows(path: &Path) -> Result<Rows, ReadError> {
    let text = String::from_utf8(super::read(path)?)
        .map_err(|_| ReadError::Shape { path: path.to_owned(), what: "not UTF-8".into() })?;
    if text.trim_start().starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| ReadError::Shape { path: path.to_owned(), what: format!("not a JSON list: {e}") })?;
        return Ok(v.into_iter().enumerate().map(|(i, r)| (format!("row {i}"), Ok(r))).collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (format!("line {}", i + 1), serde_json::from_str(l).map_err(|e| format!("not JSON: {e}"))))
        .collect())
}

/// The annotation file of a split, if any.
pub fn split_file(root: &Path, split: Split) -> Option<PathBuf> {
    let s = split.as_str();
    [root.join("annotations"), root.to_owned()]
        .iter()
        .flat_map(|d| {
            [format!("{s}_annotations.json"), format!("{s}_annotations.jsonl"), format!("{s}.jsonl")].map(|f| d.join(f))
        })
        .find(|p| p.is_file())
}

/// Every record of both splits (train first, file order), and the rows that were skipped. A root holding the
/// official `psg.json` (see [`super::psg_json::find`]) is read by [`super::psg_json`] instead, and one with no JSON
/// rows but Parquet files by [`super::psg_parquet`].
pub fn read_dir(root: &Path) -> Result<(Vec<PsgRecord>, Vec<RecordError>), ReadError> {
    if let Some(path) = super::psg_json::find(root) {
        return super::psg_json::read(&path, root);
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut found = false;
    for split in [Split::Train, Split::Test] {
        let Some(path) = split_file(root, split) else { continue };
        found = true;
        let dir = path.parent().unwrap_or(root).to_owned();
        for (at, row) in rows(&path)? {
            match row.and_then(|r| record(&r, split, &[root, &dir])) {
                Ok(r) => out.push(r),
                Err(what) => skipped.push(RecordError { record: format!("{}: {at}", path.display()), what }),
            }
        }
    }
    if !found {
        if let Some(r) = super::psg_parquet::read_dir(root) {
            return r;
        }
        let what = "no psg.json, {train,test}_annotations.json[l], {train,test}.jsonl (here or under annotations/) or \
                    R1-SGG Parquet files (see sgvlm_data::readers::psg_parquet)"
            .into();
        return Err(ReadError::Shape { path: root.to_owned(), what });
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn row_forms() {
        let row = json!({"image_id": 7, "image": {"bytes": "AAEC", "path": null},
            "objects": "[{\"id\": \"person.1\", \"bbox\": [1, 2, 30, 40]}, {\"id\": \"grass-merged.2\", \"bbox\": [0, 30, 64, 48]}]",
            "relationships": [{"subject": "person.1", "predicate": "standing  on", "object": "grass-merged.2"},
                              {"subject": "person.1", "predicate": "on", "object": "tree.9"}]});
        let r = record(&row, Split::Test, &[Path::new("/d")]).unwrap();
        assert_eq!((r.image_id.as_str(), r.dangling, r.image), ("7", 1, ImageSource::Bytes(vec![0, 1, 2])));
        assert_eq!(
            sgvlm_graph::json::to_r1sgg_string(&r.graph),
            r#"{"objects":[{"id":"person.1","bbox":[1,2,30,40]},{"id":"grass-merged.2","bbox":[0,30,64,48]}],"relationships":[{"subject":"person.1","predicate":"standing-on","object":"grass-merged.2"}]}"#
        );
        let row = json!({"image_id": "a", "image_path": "x/a.jpg", "objects": [], "relationships": []});
        assert_eq!(
            record(&row, Split::Train, &[Path::new("/d")]).unwrap().image,
            ImageSource::Path("/d/x/a.jpg".into())
        );
    }

    #[test]
    fn bad_rows_say_why() {
        let e = |v: Value| record(&v, Split::Train, &[Path::new("/d")]).unwrap_err();
        assert_eq!(e(json!(3)), "row is not a JSON object");
        assert_eq!(e(json!({"image_id": "a"})), "missing `objects`");
        assert_eq!(
            e(json!({"image_id": "a", "objects": "[1", "relationships": []})),
            "`objects` (a string holding JSON): EOF while parsing a list at line 1 column 2"
        );
        assert_eq!(
            e(
                json!({"image_id": "a", "objects": [{"id": "p.1", "bbox": [1, 2]}], "relationships": [], "image_path": "p"})
            ),
            "objects[0].bbox: expected 4 integers, found 2 values"
        );
        assert_eq!(e(json!({"image_id": "a", "objects": [], "relationships": []})), "no `image` or `image_path`");
    }
}
