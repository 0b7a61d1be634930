//! End to end: synthetic scenes → `prepare` for each dataset; row counts, strict validity of every solution,
//! determinism of the generator, and resuming without duplicates.

use sgvlm_data::prepare::{prepare, Dataset, Silent, SplitCounts, Summary};
use sgvlm_data::synth::write::{write_all, SynthOptions, SynthSummary};
use sgvlm_graph::{strict, Schema, StrictConfig};
use std::path::Path;

const OPTS: SynthOptions = SynthOptions { images: 8, videos: 3, frames: 4, seed: 11 };

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn check(ds: Dataset, root: &Path, out: &Path) -> Summary {
    let sum = prepare(ds, root, out, &Silent).unwrap();
    assert!(sum.skipped.is_empty(), "{:?}", sum.skipped);
    for (split, c) in [("train", sum.train), ("test", sum.test)] {
        assert_eq!(c.before, c.removed + c.kept);
        let sft = lines(&out.join(format!("{split}.jsonl")));
        let grpo = lines(&out.join(format!("grpo/{split}.jsonl")));
        assert_eq!((sft.len(), grpo.len()), (c.kept, c.kept));
        let schema = if ds == Dataset::Ag { Schema::Ag } else { Schema::Triplet };
        for (i, row) in grpo.iter().enumerate() {
            assert_eq!(row["id"], i);
            let sol = row["solution"].as_str().unwrap();
            assert!(strict::is_valid(sol, schema, &StrictConfig::default()), "{split} row {i}: {sol}");
            assert_eq!(sft[i]["messages"][1]["content"].as_str().map(|s| s == sol || ds == Dataset::Psg), Some(true));
            let img = image::open(row["images"][0].as_str().unwrap()).unwrap();
            assert_eq!((img.width(), img.height()), (640, 480));
        }
    }
    sum
}

#[test]
fn synth_then_prepare_every_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let s = write_all(&synth, &OPTS).unwrap();
    assert_eq!(s, SynthSummary { psg_images: 8, pvsg_videos: 3, pvsg_frames: 12, ag_videos: 3, ag_frames: 12 });

    let psg = check(Dataset::Psg, &synth.join("psg"), &dir.path().join("out/psg"));
    let c = |before, removed, kept| SplitCounts { before, removed, kept };
    assert_eq!((psg.train, psg.test), (c(6, 1, 5), c(2, 1, 1)));
    // The official psg.json form of the same images gives the same samples.
    let official = check(Dataset::Psg, &synth.join("psg_json"), &dir.path().join("out/psg_json"));
    assert_eq!((official.train, official.test), (psg.train, psg.test));
    for f in ["train.jsonl", "test.jsonl"] {
        let sol = |d: &str| -> Vec<serde_json::Value> {
            lines(&dir.path().join(d).join("grpo").join(f)).iter().map(|r| r["solution"].clone()).collect()
        };
        assert_eq!(sol("out/psg"), sol("out/psg_json"), "{f}");
    }
    let pvsg = check(Dataset::Pvsg, &synth.join("pvsg"), &dir.path().join("out/pvsg"));
    assert_eq!((pvsg.train, pvsg.test), (c(8, 0, 8), c(4, 0, 4)));
    let ag = check(Dataset::Ag, &synth.join("ag"), &dir.path().join("out/ag"));
    assert_eq!((ag.train, ag.test), (c(8, 0, 8), c(4, 0, 4)));
    // Temporal datasets chain frames: the second frame of a video sees the first one's graph.
    let rows = lines(&dir.path().join("out/pvsg/train.jsonl"));
    let prompts: Vec<&str> = rows.iter().map(|r| r["messages"][0]["content"].as_str().unwrap()).collect();
    assert!(prompts.iter().any(|p| p.contains("Previous frame scene graph (TOON):\nobj[")));

    // Resuming: a second run takes every unit from the first and writes the same rows.
    let before = std::fs::read(dir.path().join("out/ag/train.jsonl")).unwrap();
    let again = prepare(Dataset::Ag, &synth.join("ag"), &dir.path().join("out/ag"), &Silent).unwrap();
    assert_eq!((again.resumed, again.train, again.test), (12, ag.train, ag.test));
    assert_eq!(std::fs::read(dir.path().join("out/ag/train.jsonl")).unwrap(), before);
}

#[test]
fn synth_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = SynthOptions { images: 3, videos: 2, frames: 3, seed: 5 };
    write_all(a.path(), &o).unwrap();
    write_all(b.path(), &o).unwrap();
    for f in
        ["psg/annotations/train_annotations.json", "pvsg/pvsg.json", "ag/annotations/object_bbox_and_relationship.pkl"]
    {
        assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
    }
}

#[test]
fn bad_records_are_counted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("psg");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("train.jsonl"),
        "{\"image_id\": \"a\", \"objects\": [], \"relationships\": [], \"image_path\": \"missing.png\"}\nnot json\n",
    )
    .unwrap();
    let sum = prepare(Dataset::Psg, &root, &dir.path().join("out"), &Silent).unwrap();
    let skipped: Vec<(String, usize)> = sum.skipped.into_iter().collect();
    assert_eq!(skipped, [("cannot read".to_owned(), 1), ("not JSON".to_owned(), 1)]);
    assert_eq!((sum.train.before, sum.test.before), (0, 0));
}
