//! PVSG: `pvsg.json` + per-frame images + id masks → one raw graph per frame (native pixels, before scaling and
//! cleaning). The rules are the reference's `prepare_original_pvsg_sft.py` (facts §3.2):
//!
//! - `pvsg.json` sits at `ROOT/` or `ROOT/annotations/`; `split[source][train|val]` lists the videos (`val` is
//!   written as test); a video in no list is skipped and counted;
//! - frames are `{source}/frames/{video}/*.png` (also under `ROOT/OpenPVSG/`), sorted by name, frame index =
//!   integer stem; the mask is `{source}/masks/{video}/{stem}.png` or a flat `masks/{stem}.png`;
//! - a mask is a palette or grey PNG whose value is the `object_id` (0 = void); a 3-channel mask is
//!   R + 256·G + 65536·B; 16-bit grey is read as is;
//! - every id > 0 of the object table present in the mask gives an **inclusive** box `[min x, min y, max x, max y]`;
//!   objects are ordered by id and renumbered 1..n;
//! - a relation `[s, o, pred, [[b, e], …]]` (or a dict with `subject_tid|subject_id|subject`,
//!   `object_tid|object_id|object`, `predicate|pred`, `intervals` or `begin_fid`/`end_fid`) is active when the frame
//!   index lies in an inclusive span (no spans: always); it is kept when both ends are present and differ, deduplicated
//!   on `(s, o, raw predicate)`, and its predicate is whitespace-collapsed with spaces → `-`;
//! - a frame with no mask or no known object is a [`RecordError`] (skipped and counted).

use super::psg::hyphen_predicate;
use super::{ReadError, RecordError, Split};
use serde_json::Value;
use sgvlm_graph::{BBox, Object, Relation, TripletGraph};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One relation of a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvsgRelation {
    pub subj: i64,
    pub obj: i64,
    pub pred: String,
    /// Inclusive frame spans; empty = always active.
    pub spans: Vec<(i64, i64)>,
}

/// One frame's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvsgFrameRef {
    pub index: i64,
    pub stem: String,
    pub image: PathBuf,
    pub mask: Option<PathBuf>,
}

/// One video: its tables and frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvsgVideo {
    pub video_id: String,
    pub source: String,
    pub split: Split,
    pub objects: BTreeMap<i64, String>,
    pub relations: Vec<PvsgRelation>,
    pub frames: Vec<PvsgFrameRef>,
}

/// A decoded id mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMask {
    pub width: u32,
    pub height: u32,
    pub ids: Vec<u32>,
}

/// Decodes a mask PNG without palette expansion.
pub fn decode_mask(bytes: &[u8]) -> Result<IdMask, String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut r = dec.read_info().map_err(|e| format!("mask: {e}"))?;
    let mut buf = vec![0; r.output_buffer_size().ok_or("mask: image too large")?];
    let info = r.next_frame(&mut buf).map_err(|e| format!("mask: {e}"))?;
    let (w, h) = (info.width, info.height);
    let n = w as usize * h as usize;
    let data = &buf[..info.buffer_size()];
    let px = |ch: usize, depth: usize| -> Vec<u32> {
        data.chunks(info.line_size)
            .flat_map(|row| row.chunks_exact(ch * depth).take(w as usize))
            .map(|p| match (ch, depth) {
                (_, 2) => u32::from(u16::from_be_bytes([p[0], p[1]])),
                (3 | 4, _) => u32::from(p[0]) + 256 * u32::from(p[1]) + 65536 * u32::from(p[2]),
                _ => u32::from(p[0]),
            })
            .collect()
    };
    use png::{BitDepth as D, ColorType as C};
    let ids = match (info.color_type, info.bit_depth) {
        (C::Indexed | C::Grayscale, D::Eight) => px(1, 1),
        (C::Grayscale, D::Sixteen) => px(1, 2),
        (C::GrayscaleAlpha, D::Eight) => px(2, 1),
        (C::Rgb, D::Eight) => px(3, 1),
        (C::Rgba, D::Eight) => px(4, 1),
        (c, d) => return Err(format!("mask: unsupported PNG {c:?}/{d:?}")),
    };
    if ids.len() != n {
        return Err("mask: truncated pixel data".into());
    }
    Ok(IdMask { width: w, height: h, ids })
}

/// The frame's graph from its mask (module doc); `Err` when no known object is present.
pub fn frame_graph(v: &PvsgVideo, index: i64, mask: &IdMask) -> Result<TripletGraph, String> {
    let mut boxes: BTreeMap<u32, [i64; 4]> = BTreeMap::new();
    let w = mask.width.max(1) as usize;
    for (i, &id) in mask.ids.iter().enumerate() {
        if id == 0 || !v.objects.contains_key(&i64::from(id)) {
            continue;
        }
        let (x, y) = ((i % w) as i64, (i / w) as i64);
        let b = boxes.entry(id).or_insert([x, y, x, y]);
        *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    if boxes.is_empty() {
        return Err("no known object in the mask".into());
    }
    let mut g = TripletGraph::default();
    let mut new_id: BTreeMap<i64, u32> = BTreeMap::new();
    for (k, (id, b)) in boxes.iter().enumerate() {
        let n = k as u32 + 1;
        new_id.insert(i64::from(*id), n);
        let name = v.objects.get(&i64::from(*id)).cloned().unwrap_or_default();
        g.objects.push(Object { id: n, name, bbox: BBox::from(*b) });
    }
    let mut seen: HashSet<(i64, i64, &str)> = HashSet::new();
    for r in &v.relations {
        let active = r.spans.is_empty() || r.spans.iter().any(|&(b, e)| b <= index && index <= e);
        let (Some(&s), Some(&o)) = (new_id.get(&r.subj), new_id.get(&r.obj)) else { continue };
        if active && s != o && seen.insert((r.subj, r.obj, r.pred.as_str())) {
            g.relations.push(Relation { subj: s, pred: hyphen_predicate(&r.pred), obj: o });
        }
    }
    Ok(g)
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)))
}

fn spans(v: Option<&Value>) -> Option<Vec<(i64, i64)>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|s| Some((int(s.get(0))?, int(s.get(1))?))).collect::<Option<Vec<_>>>(),
        _ => None,
    }
}

fn relation(r: &Value) -> Option<PvsgRelation> {
    if let Value::Array(a) = r {
        let pred = a.get(2)?.as_str()?.to_owned();
        return Some(PvsgRelation { subj: int(a.first())?, obj: int(a.get(1))?, pred, spans: spans(a.get(3))? });
    }
    let first = |keys: &[&str]| keys.iter().find_map(|k| r.get(*k));
    let pred = first(&["predicate", "pred"])?.as_str()?.to_owned();
    let spans = match (r.get("intervals"), int(r.get("begin_fid")), int(r.get("end_fid"))) {
        (Some(iv), _, _) => spans(Some(iv))?,
        (None, Some(b), Some(e)) => vec![(b, e)],
        _ => Vec::new(),
    };
    Some(PvsgRelation {
        subj: int(first(&["subject_tid", "subject_id", "subject"]))?,
        obj: int(first(&["object_tid", "object_id", "object"]))?,
        pred,
        spans,
    })
}

fn video(d: &Value, root: &Path, source: &str, split: Split) -> Result<PvsgVideo, String> {
    let video_id = d.get("video_id").and_then(Value::as_str).ok_or("missing `video_id`")?.to_owned();
    let mut objects = BTreeMap::new();
    for (i, o) in d.get("objects").and_then(Value::as_array).ok_or("missing `objects`")?.iter().enumerate() {
        let id = int(o.get("object_id").or_else(|| o.get("id"))).ok_or(format!("objects[{i}]: no integer id"))?;
        let name = o.get("category").or_else(|| o.get("name")).and_then(Value::as_str);
        objects.insert(id, name.ok_or(format!("objects[{i}]: no category"))?.to_owned());
    }
    let rels = d.get("relations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let relations = rels
        .iter()
        .enumerate()
        .map(|(i, r)| relation(r).ok_or(format!("relations[{i}]: not [s, o, pred, spans] or a relation dict")))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = [root.join(source), root.join("OpenPVSG").join(source)]
        .into_iter()
        .find(|d| d.join("frames").join(&video_id).is_dir())
        .ok_or(format!("no frames folder {source}/frames/{video_id}"))?;
    let fdir = dir.join("frames").join(&video_id);
    let mut names: Vec<String> = std::fs::read_dir(&fdir)
        .map_err(|e| format!("{}: {e}", fdir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.to_ascii_lowercase().ends_with(".png") || n.to_ascii_lowercase().ends_with(".jpg"))
        .collect();
    names.sort();
    let frames = names
        .into_iter()
        .filter_map(|n| {
            let stem = n.rsplit_once('.').map_or(n.as_str(), |(s, _)| s).to_owned();
            let index = stem.parse().ok()?;
            let mask = [
                dir.join("masks").join(&video_id).join(format!("{stem}.png")),
                dir.join("masks").join(format!("{stem}.png")),
            ]
            .into_iter()
            .find(|p| p.is_file());
            Some(PvsgFrameRef { index, image: fdir.join(&n), stem, mask })
        })
        .collect();
    Ok(PvsgVideo { video_id, source: source.to_owned(), split, objects, relations, frames })
}

/// Every listed video (in `data` order) and the records that were skipped.
pub fn read_dir(root: &Path) -> Result<(Vec<PvsgVideo>, Vec<RecordError>), ReadError> {
    let path = [root.join("pvsg.json"), root.join("annotations/pvsg.json")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| root.join("pvsg.json"));
    let doc: Value = serde_json::from_slice(&super::read(&path)?)
        .map_err(|e| ReadError::Shape { path: path.clone(), what: format!("not JSON: {e}") })?;
    let shape = |what: &str| ReadError::Shape { path: path.clone(), what: what.into() };
    let mut listed: BTreeMap<String, (String, Split)> = BTreeMap::new();
    for (source, s) in doc.get("split").and_then(Value::as_object).ok_or_else(|| shape("no `split` object"))? {
        for (key, split) in [("train", Split::Train), ("val", Split::Test), ("test", Split::Test)] {
            for id in s.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(id) = id.as_str() {
                    listed.insert(id.to_owned(), (source.clone(), split));
                }
            }
        }
    }
    let data = doc.get("data").and_then(Value::as_array).ok_or_else(|| shape("no `data` list"))?;
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for (i, d) in data.iter().enumerate() {
        let id = d.get("video_id").and_then(Value::as_str).unwrap_or("?");
        let rec = format!("{}: data[{i}] ({id})", path.display());
        let Some((source, split)) = listed.get(id) else {
            skipped.push(RecordError { record: rec, what: "video in no split list".into() });
            continue;
        };
        match video(d, root, source, *split) {
            Ok(v) => out.push(v),
            Err(what) => skipped.push(RecordError { record: rec, what }),
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frame_graph_inclusive_boxes_spans_and_dedup() {
        let v = PvsgVideo {
            video_id: "v".into(),
            source: "vidor".into(),
            split: Split::Train,
            objects: BTreeMap::from([(1, "wall".into()), (2, "adult".into()), (3, "cake".into())]),
            relations: vec![
                relation(&json!([2, 3, "looking at", [[0, 2]]])).unwrap(),
                relation(&json!([2, 3, "looking at", [[1, 1]]])).unwrap(),
                relation(
                    &json!({"subject_id": 3, "object_id": 1, "predicate": "next to", "begin_fid": 3, "end_fid": 4}),
                )
                .unwrap(),
                relation(&json!([3, 3, "on", []])).unwrap(),
            ],
            frames: vec![],
        };
        // 4×3 mask: id 2 at (1,0),(2,1); id 3 at (3,2); id 9 unknown.
        let mask = IdMask { width: 4, height: 3, ids: vec![0, 2, 0, 9, 0, 0, 2, 0, 0, 0, 0, 3] };
        let g = frame_graph(&v, 1, &mask).unwrap();
        let mut s = String::new();
        sgvlm_graph::toon::write_triplet(&mut s, &g, &sgvlm_graph::toon::Layout::RAW);
        assert_eq!(s, "obj[2]{id,name,x1,y1,x2,y2}:\n  1,adult,1,0,2,1\n  2,cake,3,2,3,2\nrel[1]{subj,pred,obj}:\n  1,looking-at,2");
        assert_eq!(frame_graph(&v, 3, &mask).unwrap().relations.len(), 0);
        assert_eq!(
            frame_graph(&v, 0, &IdMask { width: 1, height: 1, ids: vec![9] }).unwrap_err(),
            "no known object in the mask"
        );
    }

    #[test]
    fn masks_decode_palette_and_rgb() {
        let mut buf = Vec::new();
        let mut enc = png::Encoder::new(&mut buf, 2, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_palette(vec![0u8; 768]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 7]).unwrap();
        w.finish().unwrap();
        assert_eq!(decode_mask(&buf).unwrap().ids, vec![0, 7]);
        let rgb = image::RgbImage::from_raw(1, 1, vec![12, 34, 56]).unwrap();
        let mut c = std::io::Cursor::new(Vec::new());
        rgb.write_to(&mut c, image::ImageFormat::Png).unwrap();
        assert_eq!(decode_mask(c.get_ref()).unwrap().ids, vec![3678732]);
        assert!(decode_mask(b"not a png").unwrap_err().starts_with("mask: "));
    }
}
