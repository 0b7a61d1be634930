//! PSG's official `psg.json` (OpenPSG): one file holding every image, the vocabularies and the test split.
//!
//! Shape (see `datasets_and_peers.md` §1): top-level `data`, `thing_classes`, `stuff_classes`, `predicate_classes`,
//! `test_image_ids`. Each `data[i]` has `file_name` (relative to the COCO root), `image_id` (a string), `annotations`
//! (`{bbox: [x1,y1,x2,y2] floats, bbox_mode: 0, category_id}`) and `relations` (`[subj_idx, obj_idx, pred_idx]`).
//!
//! Rules:
//! - the split is `test` for an `image_id` listed in `test_image_ids`, otherwise `train` (the file has no other key);
//! - objects are the `annotations` in order, ids 1..n; the name is `(thing_classes ++ stuff_classes)[category_id]`
//!   (0-based); the box is the float xyxy rounded half-to-even (Python `round`) to native integer pixels; the
//!   canonical 640×480 scaling happens later, so a box is rounded twice, as it is for the reference's R1-SGG rows
//!   (which hold integer boxes);
//! - a relation's endpoints are 0-based positions in `annotations` (object ids `idx + 1`) and its predicate a 0-based
//!   index into `predicate_classes`, hyphenated as in the row reader (`standing on` → `standing-on`). All relations
//!   are kept; exact duplicates and self-relations are removed by the cleaner like any other dataset's. (OpenPSG's
//!   own training loader instead keeps one random predicate per pair; the paper's data does not come from it.)
//! - the image is `file_name` looked up under `ROOT`, `ROOT/coco`, the folder of `psg.json` and its `coco/`
//!   sibling (OpenPSG's `data/psg/psg.json` + `data/coco/…` layout), the first that holds it.
//!
//! A record of the wrong shape (index out of range, a box that is not four numbers, a missing field) is a
//! [`RecordError`] naming the file and `data[i]` with its `image_id`; the other records go on.

use super::psg::{hyphen_predicate, ImageSource, PsgRecord};
use super::{ReadError, RecordError, Split};
use serde_json::Value;
use sgvlm_graph::{BBox, Object, Relation, TripletGraph};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where `psg.json` is under a dataset root: `ROOT/psg.json`, `ROOT/psg/psg.json` or `ROOT/annotations/psg.json`.
pub fn find(root: &Path) -> Option<PathBuf> {
    if root.is_file() && root.extension().is_some_and(|e| e == "json") {
        return Some(root.to_owned());
    }
    ["psg.json", "psg/psg.json", "annotations/psg.json"].iter().map(|f| root.join(f)).find(|p| p.is_file())
}

/// Python `round(x)` to an integer: half to even.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

fn strings(top: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match top.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("`{key}` holds a non-string")))
            .collect(),
        _ => Err(format!("missing list `{key}`")),
    }
}

fn id_string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn index(v: &Value, len: usize, what: &str) -> Result<usize, String> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n < len)
        .ok_or_else(|| format!("{what} {v} is not an index below {len}"))
}

/// The vocabularies a record is read against.
struct Vocab {
    categories: Vec<String>,
    predicates: Vec<String>,
}

fn graph(rec: &serde_json::Map<String, Value>, v: &Vocab) -> Result<TripletGraph, String> {
    let Some(Value::Array(anns)) = rec.get("annotations") else { return Err("missing list `annotations`".into()) };
    let mut objects = Vec::with_capacity(anns.len());
    for (k, a) in anns.iter().enumerate() {
        let cat = a.get("category_id").ok_or_else(|| format!("annotations[{k}]: missing `category_id`"))?;
        let cat = index(cat, v.categories.len(), "category_id").map_err(|e| format!("annotations[{k}]: {e}"))?;
        let b: Option<Vec<f64>> =
            a.get("bbox").and_then(Value::as_array).map(|b| b.iter().filter_map(Value::as_f64).collect());
        let b = b.filter(|b| b.len() == 4).ok_or_else(|| format!("annotations[{k}].bbox: expected 4 numbers"))?;
        if a.get("bbox_mode").and_then(Value::as_u64).is_some_and(|m| m != 0) {
            return Err(format!("annotations[{k}]: bbox_mode is not 0 (XYXY_ABS)"));
        }
        let id = u32::try_from(k + 1).map_err(|_| "too many annotations".to_owned())?;
        let bbox =
            BBox::new(round_half_even(b[0]), round_half_even(b[1]), round_half_even(b[2]), round_half_even(b[3]));
        objects.push(Object { id, name: v.categories[cat].clone(), bbox });
    }
    let Some(Value::Array(rels)) = rec.get("relations") else { return Err("missing list `relations`".into()) };
    let mut relations = Vec::with_capacity(rels.len());
    for (k, r) in rels.iter().enumerate() {
        let t = r.as_array().filter(|t| t.len() == 3).ok_or_else(|| format!("relations[{k}]: expected [s, o, p]"))?;
        let at = |e: String| format!("relations[{k}]: {e}");
        let s = index(&t[0], objects.len(), "subject").map_err(at)?;
        let o = index(&t[1], objects.len(), "object").map_err(at)?;
        let p = index(&t[2], v.predicates.len(), "predicate").map_err(at)?;
        relations.push(Relation { subj: objects[s].id, pred: hyphen_predicate(&v.predicates[p]), obj: objects[o].id });
    }
    Ok(TripletGraph { objects, relations })
}

/// Every record of `psg.json` at `path` (file order), and the records that were skipped. `root` is the dataset root
/// the user named (the first place images are looked for).
pub fn read(path: &Path, root: &Path) -> Result<(Vec<PsgRecord>, Vec<RecordError>), ReadError> {
    let shape = |what: String| ReadError::Shape { path: path.to_owned(), what };
    let top: Value = serde_json::from_slice(&super::read(path)?).map_err(|e| shape(format!("not JSON: {e}")))?;
    let Value::Object(top) = top else { return Err(shape("not a JSON object".into())) };
    let mut categories = strings(&top, "thing_classes").map_err(shape)?;
    categories.extend(strings(&top, "stuff_classes").map_err(shape)?);
    let vocab = Vocab { categories, predicates: strings(&top, "predicate_classes").map_err(shape)? };
    let test: HashSet<String> = match top.get("test_image_ids") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| id_string(Some(v))).collect(),
        _ => return Err(shape("missing list `test_image_ids`".into())),
    };
    let Some(Value::Array(data)) = top.get("data") else { return Err(shape("missing list `data`".into())) };
    let here = path.parent().unwrap_or(root);
    let dirs: Vec<PathBuf> = [root.to_owned(), root.join("coco"), here.to_owned(), here.join("coco")]
        .into_iter()
        .chain(here.parent().map(|p| p.join("coco")))
        .collect();
    let mut out = Vec::with_capacity(data.len());
    let mut skipped = Vec::new();
    for (i, rec) in data.iter().enumerate() {
        let image_id = id_string(rec.get("image_id"));
        let name = format!("{}: data[{i}] (image_id {})", path.display(), image_id.as_deref().unwrap_or("?"));
        let one = || -> Result<PsgRecord, String> {
            let Value::Object(m) = rec else { return Err("record is not a JSON object".into()) };
            let image_id = image_id.clone().ok_or("missing `image_id`")?;
            let file = m.get("file_name").and_then(Value::as_str).ok_or("missing `file_name`")?;
            let image = dirs.iter().map(|d| d.join(file)).find(|p| p.is_file()).unwrap_or_else(|| root.join(file));
            let split = if test.contains(&image_id) { Split::Test } else { Split::Train };
            Ok(PsgRecord { graph: graph(m, &vocab)?, image_id, split, image: ImageSource::Path(image), dangling: 0 })
        };
        match one() {
            Ok(r) => out.push(r),
            Err(what) => skipped.push(RecordError { record: name, what }),
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_round() {
        let r: Vec<i64> = [0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.6, 74.0].iter().map(|&x| round_half_even(x)).collect();
        assert_eq!(r, [0, 2, 2, 0, -2, 2, 3, 74]);
    }

    fn write(dir: &Path, doc: &Value) -> PathBuf {
        let p = dir.join("psg.json");
        std::fs::write(&p, doc.to_string()).unwrap();
        p
    }

    #[test]
    fn reads_the_documented_example() {
        let d = tempfile::tempdir().unwrap();
        let mut things: Vec<String> = vec!["person".into()];
        things.extend((1..80).map(|i| format!("thing{i}")));
        let mut stuff: Vec<String> = (80..125).map(|i| format!("stuff{i}")).collect();
        stuff.push("grass-merged".into());
        stuff.extend((126..133).map(|i| format!("stuff{i}")));
        let mut preds: Vec<String> = (0..14).map(|i| format!("p{i}")).collect();
        preds.push("standing on".into());
        let doc = json!({
            "data": [{"file_name": "train2017/000000000042.jpg", "height": 480, "width": 640, "image_id": "900001",
                "pan_seg_file_name": "panoptic_train2017/000000000042.png",
                "segments_info": [{"id": 3678732, "category_id": 0, "iscrowd": 0, "isthing": 1, "area": 5120},
                                  {"id": 65793, "category_id": 125, "iscrowd": 0, "isthing": 0, "area": 90000}],
                "relations": [[0, 1, 14]],
                "annotations": [{"bbox": [10.0, 20.5, 74.0, 100.5], "bbox_mode": 0, "category_id": 0},
                                {"bbox": [0.0, 300.0, 640.0, 480.0], "bbox_mode": 0, "category_id": 125}],
                "coco_image_id": "42"},
                {"file_name": "val2017/b.jpg", "image_id": "900002", "annotations": [], "relations": []},
                {"file_name": "val2017/c.jpg", "image_id": "900003", "relations": [[0, 5, 1]],
                 "annotations": [{"bbox": [1, 2, 3, 4], "bbox_mode": 0, "category_id": 0}]},
                {"file_name": "val2017/d.jpg", "image_id": "900004", "relations": [],
                 "annotations": [{"bbox": [1, 2, 3], "bbox_mode": 0, "category_id": 0}]}],
            "thing_classes": things, "stuff_classes": stuff, "predicate_classes": preds,
            "test_image_ids": ["900002"]});
        let path = write(d.path(), &doc);
        std::fs::create_dir_all(d.path().join("coco/train2017")).unwrap();
        std::fs::write(d.path().join("coco/train2017/000000000042.jpg"), b"x").unwrap();
        assert_eq!(find(d.path()), Some(path.clone()));
        let (recs, skipped) = read(&path, d.path()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].image_id.as_str(), recs[0].split), ("900001", Split::Train));
        assert_eq!(recs[0].image, ImageSource::Path(d.path().join("coco/train2017/000000000042.jpg")));
        assert_eq!(
            sgvlm_graph::json::to_r1sgg_string(&recs[0].graph),
            r#"{"objects":[{"id":"person.1","bbox":[10,20,74,100]},{"id":"grass-merged.2","bbox":[0,300,640,480]}],"relationships":[{"subject":"person.1","predicate":"standing-on","object":"grass-merged.2"}]}"#
        );
        assert_eq!(
            (recs[1].split, recs[1].image.clone()),
            (Split::Test, ImageSource::Path(d.path().join("val2017/b.jpg")))
        );
        let why: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert!(
            why[0].ends_with("data[2] (image_id 900003)`: relations[0]: object 5 is not an index below 1"),
            "{why:?}"
        );
        assert!(why[1].ends_with("data[3] (image_id 900004)`: annotations[0].bbox: expected 4 numbers"), "{why:?}");
    }

    #[test]
    fn a_file_of_the_wrong_shape_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let path = write(d.path(), &json!({"data": []}));
        let e = read(&path, d.path()).unwrap_err().to_string();
        assert!(e.ends_with("psg.json: missing list `thing_classes`"), "{e}");
    }
}
