//! PVSG frame thinning (reference_facts §4): three independent filters over the dense per-frame samples, and the
//! statistics of the paper's Table 4 (frames before/after, object and predicate vocabulary before/after).
//!
//! - [`base_annot`]: keyframes where the annotation changes, then train/test vocabulary symmetry (exact);
//! - [`maxinfo`]: per-video `rect_maxvol` on frame embeddings, with a pluggable [`maxinfo::Embedder`];
//! - [`psfr`]: patchwise sparse-flow retention (Shi–Tomasi corners tracked by pyramidal Lucas–Kanade).
//!
//! Input ([`load`]): either the reference's dense files `{train,test}_annotations_toon_sft.json` (JSON lists of
//! `{image_id, image_path, answer_toon}`, the output of `prepare_original_pvsg_sft.py`), or the output folder of
//! `sgvlm data prepare --dataset pvsg`, whose per-frame records (`.work/records/pvsg-*.json`) hold the same
//! (`image_id` = `{video}_{t}`, ordered by video, then frame).
//!
//! The TOON text is read line by line as the reference scripts do (not with the strict parser): thinning must
//! behave on the same rows the same way, including rows a strict parser would reject.

pub mod base_annot;
pub mod maxinfo;
pub mod psfr;

use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One dense frame sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub image_id: String,
    pub image_path: String,
    pub toon: String,
}

/// Both splits' rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub train: Vec<Row>,
    pub test: Vec<Row>,
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Shape { path: PathBuf, what: String },
}

fn rows_of_dense(path: &Path) -> Result<Vec<Row>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    let shape = |what: String| LoadError::Shape { path: path.to_owned(), what };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| shape(format!("not JSON: {e}")))?;
    let list = v.as_array().ok_or_else(|| shape("not a JSON list".into()))?;
    let s = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    // As the reference loaders: a row without `answer_toon` is not a sample.
    Ok(list
        .iter()
        .map(|r| Row { image_id: s(r, "image_id"), image_path: s(r, "image_path"), toon: s(r, "answer_toon") })
        .filter(|r| !r.toon.is_empty())
        .collect())
}

fn rows_of_records(dir: &Path) -> Result<Rows, LoadError> {
    let io = |source| LoadError::Io { path: dir.to_owned(), source };
    let mut recs: Vec<crate::prepare::Prepared> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !(name.starts_with("pvsg-") && name.ends_with(".json")) {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|source| LoadError::Io { path: p.clone(), source })?;
        let r = serde_json::from_slice(&bytes)
            .map_err(|e| LoadError::Shape { path: p.clone(), what: format!("not a prepared record: {e}") })?;
        recs.push(r);
    }
    recs.sort_by(|a, b| (&a.video, a.t, &a.key).cmp(&(&b.video, b.t, &b.key)));
    let mut out = Rows::default();
    for r in recs {
        let video = r.video.clone().unwrap_or_default();
        let row = Row { image_id: format!("{video}_{}", r.t.unwrap_or(0)), image_path: r.image, toon: r.raw };
        if r.split == "test" { &mut out.test } else { &mut out.train }.push(row);
    }
    Ok(out)
}

/// Reads the dense rows under `root` (module doc): `root/{train,test}_annotations_toon_sft.json` (also under
/// `root/data_sft_original/`), else `root/.work/records/`.
pub fn load(root: &Path) -> Result<Rows, LoadError> {
    for dir in [root.to_owned(), root.join("data_sft_original")] {
        let (tr, te) = (dir.join("train_annotations_toon_sft.json"), dir.join("test_annotations_toon_sft.json"));
        if tr.is_file() || te.is_file() {
            let read = |p: &Path| if p.is_file() { rows_of_dense(p) } else { Ok(Vec::new()) };
            return Ok(Rows { train: read(&tr)?, test: read(&te)? });
        }
    }
    let records = root.join(".work/records");
    if records.is_dir() {
        return rows_of_records(&records);
    }
    Err(LoadError::Shape {
        path: root.to_owned(),
        what: "no {train,test}_annotations_toon_sft.json (here or under data_sft_original/) and no \
               .work/records/ of `sgvlm data prepare --dataset pvsg`"
            .into(),
    })
}

/// Object names and predicates of a TOON text, read as the reference's PSFR statistics do: inside the `obj[`
/// block, field 2 of lines starting with a digit; inside the `rel[` block, field 2 of such lines with ≥ 3 fields.
pub fn vocabulary(toon: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut objs, mut preds) = (BTreeSet::new(), BTreeSet::new());
    let (mut in_obj, mut in_rel) = (false, false);
    for line in toon.split('\n').map(str::trim) {
        if line.starts_with("obj[") && line.contains('{') {
            (in_obj, in_rel) = (true, false);
            continue;
        }
        if line.starts_with("rel[") && line.contains('{') {
            (in_obj, in_rel) = (false, true);
            continue;
        }
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        if in_obj && parts.len() >= 2 {
            objs.insert(parts[1].to_owned());
        }
        if in_rel && parts.len() >= 3 {
            preds.insert(parts[1].to_owned());
        }
    }
    (objs, preds)
}

fn vocab_of(rows: &[Row]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut o, mut p) = (BTreeSet::new(), BTreeSet::new());
    for r in rows {
        let (a, b) = vocabulary(&r.toon);
        o.extend(a);
        p.extend(b);
    }
    (o, p)
}

/// One split's Table-4 line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SplitStats {
    pub frames_before: usize,
    pub frames_after: usize,
    pub objects_before: usize,
    pub objects_after: usize,
    pub predicates_before: usize,
    pub predicates_after: usize,
}

impl SplitStats {
    /// Percentage of frames kept (0 when there were none).
    pub fn percent_kept(&self) -> f64 {
        if self.frames_before == 0 {
            0.0
        } else {
            100.0 * self.frames_after as f64 / self.frames_before as f64
        }
    }
}

/// The Table-4 statistics of one method, plus the train–test vocabulary overlap before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub train: SplitStats,
    pub test: SplitStats,
    pub shared_objects_before: usize,
    pub shared_objects_after: usize,
    pub shared_predicates_before: usize,
    pub shared_predicates_after: usize,
}

/// Statistics of `after` (a subset of `before`).
pub fn stats(before: &Rows, after: &Rows) -> Stats {
    let [(tob, tpb), (eob, epb), (toa, tpa), (eoa, epa)] =
        [&before.train, &before.test, &after.train, &after.test].map(|r| vocab_of(r));
    let split = |b: &[Row],
                 a: &[Row],
                 ob: &BTreeSet<String>,
                 pb: &BTreeSet<String>,
                 oa: &BTreeSet<String>,
                 pa: &BTreeSet<String>| SplitStats {
        frames_before: b.len(),
        frames_after: a.len(),
        objects_before: ob.len(),
        objects_after: oa.len(),
        predicates_before: pb.len(),
        predicates_after: pa.len(),
    };
    Stats {
        train: split(&before.train, &after.train, &tob, &tpb, &toa, &tpa),
        test: split(&before.test, &after.test, &eob, &epb, &eoa, &epa),
        shared_objects_before: tob.intersection(&eob).count(),
        shared_objects_after: toa.intersection(&eoa).count(),
        shared_predicates_before: tpb.intersection(&epb).count(),
        shared_predicates_after: tpa.intersection(&epa).count(),
    }
}

/// The video id of an image path: the folder in `…/frames/<video>/<digits>.(png|jpg|jpeg)` (case-insensitive),
/// as the reference's MaxInfo and PSFR group rows.
pub fn video_of_path(path: &str) -> Option<&str> {
    let (dir, file) = path.rsplit_once('/')?;
    let (stem, ext) = file.rsplit_once('.')?;
    let ext_ok = ["png", "jpg", "jpeg"].iter().any(|e| ext.eq_ignore_ascii_case(e));
    if !ext_ok || stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (parent, video) = dir.rsplit_once('/').map_or(("", dir), |(a, b)| (a, b));
    // The reference's unanchored `frames/` also matches `PVSG_frames/`.
    let frames_ok = parent.ends_with("frames");
    (frames_ok && !video.is_empty()).then_some(video)
}

/// Rows grouped by [`video_of_path`], videos in order of first appearance, rows in input order; rows without a
/// video are left out (as the reference does).
pub fn group_by_video(rows: &[Row]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(v) = video_of_path(&r.image_path.replace('\\', "/")).map(str::to_owned) else { continue };
        let k = *at.entry(v.clone()).or_insert_with(|| {
            out.push((v, Vec::new()));
            out.len() - 1
        });
        out[k].1.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_reads_like_the_reference() {
        let t =
            "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n  1,adult,0,0,1,1\n  2,cake,1,1,2,2\nrel[1]{subj,pred,obj}:\n  \
                 1,looking-at,2\n</answer>";
        let (o, p) = vocabulary(t);
        assert_eq!(
            (o.into_iter().collect::<Vec<_>>(), p.into_iter().collect::<Vec<_>>()),
            (vec!["adult".to_owned(), "cake".to_owned()], vec!["looking-at".to_owned()])
        );
    }

    #[test]
    fn video_ids_from_paths() {
        assert_eq!(video_of_path("d/frames/test_images/vidor/frames/0001_41/0007.png"), Some("0001_41"));
        assert_eq!(video_of_path("frames/P01_03/12.JPG"), Some("P01_03"));
        assert_eq!(video_of_path("x/frames/v/a12.png"), None);
        assert_eq!(video_of_path("x/v/12.png"), None);
    }
}
