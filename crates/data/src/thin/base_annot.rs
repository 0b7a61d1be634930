//! BaseAnnot (reference `utils/BaseAnnot/prepare_filtered_pvsg_sft.py`), exactly:
//!
//! A. Keyframes per video. `image_id` split on `_`: the video is all parts but the last (rows with fewer than two
//!    parts are left out), the frame the last part when it is all digits (rows without are left out). Videos in
//!    order of first appearance, frames stably sorted by number. A frame's signature is its set of object names and
//!    its relation count (the `N` of `rel[N]`; when that is 0 or absent, the relation lines are counted instead).
//!    The first frame is kept; a later one when its signature differs from the last kept frame's.
//! B. Vocabulary symmetry, at most 100 rounds: objects and predicates only in train (only in test) remove every
//!    train (test) row holding one; stop when no such item exists or nothing was removed.

use super::{Row, Rows};
use std::collections::{BTreeSet, HashMap};

/// `(video, frame)` of an `image_id`.
fn video_frame(image_id: &str) -> (Option<&str>, Option<u64>) {
    let Some((video, last)) = image_id.rsplit_once('_') else { return (None, None) };
    let video = (!video.is_empty()).then_some(video);
    // Python's `str.isdigit` and `int`: ASCII digits here (the ids are ASCII); too large a number is left out.
    let frame = (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())).then(|| last.parse().ok()).flatten();
    (video, frame)
}

/// A frame's signature: object names (field 2 of obj-block lines with a comma) and the relation count.
fn signature(toon: &str) -> (BTreeSet<&str>, usize) {
    let (mut names, mut count) = (BTreeSet::new(), 0usize);
    let (mut in_obj, mut in_rel, mut header) = (false, false, false);
    for line in toon.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("obj[") && line.contains("{id,name,x1,y1,x2,y2}") {
            (in_obj, in_rel) = (true, false);
            continue;
        }
        if line.starts_with("rel[") && line.contains("{subj,pred,obj}") {
            (in_obj, in_rel, header) = (false, true, true);
            // `re.match(r'rel\[(\d+)\]\{.*\}')`: digits, then `]{`, then a closing `}` somewhere after.
            let rest = &line[4..];
            let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
            let after = &rest[digits.len()..];
            let well_formed = !digits.is_empty() && after.starts_with("]{") && after[2..].contains('}');
            count = if well_formed { digits.parse().unwrap_or(0) } else { 0 };
            continue;
        }
        if !line.contains(',') {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        if in_obj && parts.len() >= 2 && !parts[1].is_empty() {
            names.insert(parts[1]);
        }
        if in_rel && (!header || count == 0) && parts.len() >= 3 {
            count += 1;
        }
    }
    (names, count)
}

/// Part A on one split: the kept rows, videos in first-appearance order, frames sorted.
pub fn keyframes(rows: &[Row]) -> Vec<Row> {
    let mut videos: Vec<Vec<(u64, usize)>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let (Some(video), frame) = video_frame(&r.image_id) else { continue };
        let k = *at.entry(video).or_insert_with(|| {
            videos.push(Vec::new());
            videos.len() - 1
        });
        if let Some(f) = frame {
            videos[k].push((f, i));
        }
    }
    let mut out = Vec::new();
    for mut v in videos {
        v.sort_by_key(|&(f, _)| f);
        let mut last: Option<(BTreeSet<&str>, usize)> = None;
        for (_, i) in v {
            let sig = signature(&rows[i].toon);
            if last.as_ref() != Some(&sig) {
                out.push(rows[i].clone());
                last = Some(sig);
            }
        }
    }
    out
}

/// Object names and predicates as the overlap step reads them (field 2 of comma lines in each block).
fn items(toon: &str) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let (mut objs, mut preds) = (BTreeSet::new(), BTreeSet::new());
    let (mut in_obj, mut in_rel) = (false, false);
    for line in toon.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("obj[") && line.contains("{id,name,x1,y1,x2,y2}") {
            (in_obj, in_rel) = (true, false);
            continue;
        }
        if line.starts_with("rel[") && line.contains("{subj,pred,obj}") {
            (in_obj, in_rel) = (false, true);
            continue;
        }
        if !line.contains(',') {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        if in_obj && parts.len() >= 2 {
            objs.insert(parts[1]);
        }
        if in_rel && parts.len() >= 3 {
            preds.insert(parts[1]);
        }
    }
    (objs, preds)
}

/// Part B: rows of each split whose items the other split lacks are removed until both share one vocabulary.
pub fn symmetric(train: Vec<Row>, test: Vec<Row>) -> (Vec<Row>, Vec<Row>) {
    let (mut train, mut test) = (train, test);
    for _ in 0..100 {
        let all = |rows: &[Row]| -> (BTreeSet<String>, BTreeSet<String>) {
            let (mut o, mut p) = (BTreeSet::new(), BTreeSet::new());
            for r in rows {
                let (a, b) = items(&r.toon);
                o.extend(a.into_iter().map(str::to_owned));
                p.extend(b.into_iter().map(str::to_owned));
            }
            (o, p)
        };
        let ((tro, trp), (teo, tep)) = (all(&train), all(&test));
        let only =
            |a: &BTreeSet<String>, b: &BTreeSet<String>| -> BTreeSet<String> { a.difference(b).cloned().collect() };
        let (tro_only, teo_only, trp_only, tep_only) =
            (only(&tro, &teo), only(&teo, &tro), only(&trp, &tep), only(&tep, &trp));
        if tro_only.len() + teo_only.len() + trp_only.len() + tep_only.len() == 0 {
            break;
        }
        let keep = |rows: &[Row], o: &BTreeSet<String>, p: &BTreeSet<String>| -> Vec<Row> {
            rows.iter()
                .filter(|r| {
                    let (a, b) = items(&r.toon);
                    !a.iter().any(|x| o.contains(*x)) && !b.iter().any(|x| p.contains(*x))
                })
                .cloned()
                .collect()
        };
        let (new_train, new_test) = (keep(&train, &tro_only, &trp_only), keep(&test, &teo_only, &tep_only));
        if new_train.len() == train.len() && new_test.len() == test.len() {
            break;
        }
        (train, test) = (new_train, new_test);
    }
    (train, test)
}

/// BaseAnnot on both splits.
pub fn thin(rows: &Rows) -> Rows {
    let (train, test) = symmetric(keyframes(&rows.train), keyframes(&rows.test));
    Rows { train, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, objs: &[&str], rels: &[&str]) -> Row {
        let mut t = format!("<answer>\nobj[{}]{{id,name,x1,y1,x2,y2}}:\n", objs.len());
        for (i, o) in objs.iter().enumerate() {
            t.push_str(&format!("{},{o},0,0,1,1\n", i + 1));
        }
        t.push_str(&format!("rel[{}]{{subj,pred,obj}}:\n", rels.len()));
        for r in rels {
            t.push_str(&format!("1,{r},2\n"));
        }
        t.push_str("</answer>");
        Row { image_id: id.into(), image_path: format!("frames/{id}.png"), toon: t }
    }

    fn ids(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.image_id.as_str()).collect()
    }

    #[test]
    fn keyframes_follow_annotation_changes() {
        let rows = vec![
            row("v_1_2", &["adult", "cake"], &["on"]),
            row("v_1_0", &["adult", "cake"], &["on"]),
            row("w_0", &["dog"], &[]),
            row("v_1_1", &["cake", "adult"], &["in"]),
            row("v_1_3", &["adult", "cake"], &["on", "in"]),
            row("v_1_x", &["cat"], &[]),
            row("nounderscore", &["cat"], &[]),
            row("v_1_4", &["adult", "cake"], &["on", "in"]),
        ];
        // v_1: frame 0 kept; 1 same names and count (predicate differs, not part of the signature); 2 same; 3 count
        // changes; 4 same as 3.
        assert_eq!(ids(&keyframes(&rows)), ["v_1_0", "v_1_3", "w_0"]);
    }

    #[test]
    fn zero_header_counts_lines() {
        let t = "obj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\nrel[0]{subj,pred,obj}:\n1,on,2\n1,in,2";
        // As the reference: lines are counted only while the running count is 0, so a `rel[0]` header followed
        // by two relation lines counts 1.
        assert_eq!(signature(t).1, 1);
        assert_eq!(signature("obj[0]{id,name,x1,y1,x2,y2}:\nrel[0]{subj,pred,obj}:").1, 0);
        assert_eq!(signature("rel[3]{subj,pred,obj}:\n1,on,2").1, 3);
    }

    #[test]
    fn symmetry_is_iterated() {
        let train = vec![
            row("a_0", &["adult", "cake"], &["on"]),
            row("a_1", &["adult"], &["on"]),
            row("a_2", &["adult", "dog"], &["on"]),
        ];
        let test = vec![row("b_0", &["adult", "cake"], &["on"]), row("b_1", &["adult", "cake"], &["in"])];
        // Round 1: train-only `dog` removes a_2, test-only `in` removes b_1. Round 2: nothing exclusive.
        let (tr, te) = symmetric(train, test);
        assert_eq!((ids(&tr), ids(&te)), (vec!["a_0", "a_1"], vec!["b_0"]));
    }
}
