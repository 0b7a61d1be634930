//! `sgvlm data prepare`: reader → preprocess → clean → MS-SWIFT export for one dataset, in parallel, resumable.
//!
//! 1. The dataset's reader lists the units of work (PSG: images; PVSG, AG: frames); records it cannot use are
//!    counted by reason and named on the [`Reporter`].
//! 2. Each unit is processed on the rayon pool: its image is resized to 640×480 and written under
//!    `OUT/frames/{split}_images/…`, its boxes scaled, and its raw TOON kept in a [`Prepared`] record written
//!    atomically to `OUT/.work/records/`. **Resuming:** a unit whose record and image both exist is not redone, so
//!    re-running after an interruption neither loses nor duplicates rows.
//! 3. From all records, in reader order: prompts (PVSG/AG chain each video's frames by `t`, the previous frame's
//!    **uncleaned** graph in the prompt), the cleaned targets, zero-relation removal, and the JSON-lines files,
//!    each written atomically at the end: `{train,test,eval}.jsonl` and `grpo/…` (plus `*_noprevgraph` for
//!    PVSG and AG), `eval` being the first N test rows (AG 148, PSG 100, PVSG 78). Image paths are absolute.
//! 4. A [`Summary`] like the paper's Table 2: per split, samples before cleaning, removed (zero relations), kept.

mod units;

use crate::export::{self, GrpoRow, Message, SftRow};
use crate::preprocess::write_atomic;
use crate::readers::{ReadError, RecordError, Split};
use crate::{clean, prompts};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Psg,
    Pvsg,
    Ag,
}

impl Dataset {
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Psg => "psg",
            Dataset::Pvsg => "pvsg",
            Dataset::Ag => "ag",
        }
    }
    fn eval_size(self) -> usize {
        match self {
            Dataset::Psg => export::EVAL_SIZE_PSG,
            Dataset::Pvsg => export::EVAL_SIZE_PVSG,
            Dataset::Ag => export::EVAL_SIZE_AG,
        }
    }
}

/// Progress callbacks; the library never draws (the CLI does).
pub trait Reporter: Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self) {}
    fn skipped(&self, _e: &RecordError) {}
    fn finish(&self) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// One processed unit, as stored for resuming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    pub key: String,
    pub split: String,
    /// The written 640×480 image (absolute when `OUT` is).
    pub image: String,
    pub video: Option<String>,
    pub t: Option<i64>,
    /// The scaled, uncleaned graph in raw TOON (what the cleaner reads).
    pub raw: String,
    /// The graph as the next frame's prompt embeds it (empty for PSG).
    pub prev: String,
}

impl Prepared {
    fn new(
        key: String,
        split: Split,
        image: &Path,
        video: Option<String>,
        t: Option<i64>,
        raw: String,
        prev: String,
    ) -> Self {
        let image = image.display().to_string();
        Prepared { key, split: split.as_str().to_owned(), image, video, t, raw, prev }
    }
}

/// Table-2 counts of one split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    pub before: usize,
    pub removed: usize,
    pub kept: usize,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dataset: &'static str,
    pub train: SplitCounts,
    pub test: SplitCounts,
    /// Records that could not be used, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Units taken from an earlier run.
    pub resumed: usize,
    pub outputs: Vec<String>,
}

/// A run that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The reason class of a skip: the message up to its first `:`, without words that are paths.
fn reason(what: &str) -> String {
    let head = what.split(':').next().unwrap_or(what);
    head.split_whitespace().take_while(|w| !w.contains('/')).collect::<Vec<_>>().join(" ")
}

/// Runs the whole preparation (module doc).
pub fn prepare(ds: Dataset, root: &Path, out: &Path, rep: &dyn Reporter) -> Result<Summary, PrepareError> {
    let out = &std::path::absolute(out).map_err(|source| PrepareError::Write { path: out.to_owned(), source })?;
    let mut sum = Summary { dataset: ds.as_str(), ..Summary::default() };
    let (units, read_skips) = units::units(ds, root)?;
    for e in &read_skips {
        rep.skipped(e);
        *sum.skipped.entry(reason(&e.what)).or_default() += 1;
    }
    let work = out.join(".work/records");
    std::fs::create_dir_all(&work).map_err(|source| PrepareError::Write { path: work.clone(), source })?;
    rep.start(units.len() as u64);
    let results: Vec<(Result<Prepared, RecordError>, bool)> = units
        .par_iter()
        .map(|u| {
            let key = u.key();
            let cache = work.join(format!("{}-{:016x}.json", ds.as_str(), fnv(&key)));
            let cached = std::fs::read(&cache)
                .ok()
                .and_then(|b| serde_json::from_slice::<Prepared>(&b).ok())
                .filter(|p| p.key == key && Path::new(&p.image).is_file());
            let r = match cached {
                Some(p) => (Ok(p), true),
                None => {
                    let r = u.process(out).map_err(|what| RecordError { record: key.clone(), what });
                    if let Ok(p) = &r {
                        if let Ok(json) = serde_json::to_vec(p) {
                            // A failed cache write only costs redoing this unit next time.
                            let _ = write_atomic(&cache, &json);
                        }
                    }
                    (r, false)
                }
            };
            rep.advance();
            r
        })
        .collect();
    rep.finish();
    let mut recs = Vec::with_capacity(results.len());
    for (r, resumed) in results {
        sum.resumed += usize::from(resumed);
        match r {
            Ok(p) => recs.push(p),
            Err(e) => {
                rep.skipped(&e);
                *sum.skipped.entry(reason(&e.what)).or_default() += 1;
            }
        }
    }
    for split in [Split::Train, Split::Test] {
        let mine: Vec<&Prepared> = recs.iter().filter(|p| p.split == split.as_str()).collect();
        let (rows, counts) = samples(ds, &mine);
        match split {
            Split::Train => sum.train = counts,
            Split::Test => sum.test = counts,
        }
        write_rows(ds, split, &rows, out, &mut sum)?;
    }
    let path = out.join("summary.json");
    let json = serde_json::to_string_pretty(&sum).unwrap_or_default();
    write_atomic(&path, json.as_bytes()).map_err(|source| PrepareError::Write { path, source })?;
    Ok(sum)
}

/// One kept sample.
struct Sample<'a> {
    rec: &'a Prepared,
    prompt: String,
    prompt_noprev: String,
    grpo_prompt: String,
    target: String,
    solution: String,
}

/// Cleans `raw`; `None` when the sample is removed (zero relations or unparsable).
fn target(ds: Dataset, raw: &str) -> Option<(String, String)> {
    match ds {
        Dataset::Ag => {
            clean::clean_ag_text(raw).ok().filter(|c| c.stats.rels_kept > 0).map(|c| (c.text.clone(), c.text))
        }
        Dataset::Psg | Dataset::Pvsg => {
            let c = clean::clean_triplet_text(raw, false);
            if c.stats.relations_kept == 0 {
                return None;
            }
            let sol = if ds == Dataset::Psg { clean::clean_triplet_text(raw, true).text } else { c.text.clone() };
            Some((c.text, sol))
        }
    }
}

fn order_videos<'a>(recs: &[&'a Prepared]) -> Vec<Vec<&'a Prepared>> {
    let mut clips: Vec<(&str, Vec<&Prepared>)> = Vec::new();
    for p in recs {
        let v = p.video.as_deref().unwrap_or("");
        match clips.iter_mut().find(|(k, _)| *k == v) {
            Some((_, l)) => l.push(p),
            None => clips.push((v, vec![p])),
        }
    }
    clips
        .into_iter()
        .map(|(_, mut l)| {
            l.sort_by(|a, b| (a.t.is_none(), a.t, &a.key).cmp(&(b.t.is_none(), b.t, &b.key)));
            l
        })
        .collect()
}

fn samples<'a>(ds: Dataset, recs: &[&'a Prepared]) -> (Vec<Sample<'a>>, SplitCounts) {
    let mut c = SplitCounts { before: recs.len(), ..SplitCounts::default() };
    let mut out = Vec::new();
    let mut push = |rec: &'a Prepared, prompt: String, grpo_prompt: String| match target(ds, &rec.raw) {
        Some((target, solution)) => {
            let prompt_noprev = prompts::without_prev_graph(&prompt).unwrap_or_else(|_| prompt.clone());
            out.push(Sample { rec, prompt, prompt_noprev, grpo_prompt, target, solution });
            c.kept += 1;
        }
        None => c.removed += 1,
    };
    if ds == Dataset::Psg {
        let (sft, grpo) = (prompts::psg(prompts::PsgLabels::Sft), prompts::psg(prompts::PsgLabels::Canonical));
        for rec in recs {
            push(rec, sft.clone(), grpo.clone());
        }
    } else {
        for clip in order_videos(recs) {
            let mut prev: Option<&str> = None;
            for rec in clip {
                let prompt = match (ds, prev) {
                    (Dataset::Ag, None) => prompts::ag_first(),
                    (Dataset::Ag, Some(p)) => prompts::ag_follow(p),
                    (_, None) => prompts::pvsg_first(),
                    (_, Some(p)) => prompts::pvsg_with_prev(p),
                };
                prev = Some(&rec.prev);
                push(rec, prompt.clone(), prompt);
            }
        }
    }
    (out, c)
}

fn grpo_row(ds: Dataset, id: usize, s: &Sample<'_>, prompt: &str) -> GrpoRow {
    let stem = Path::new(&s.rec.image).file_stem().map(|x| x.to_string_lossy().into_owned());
    let psg = ds == Dataset::Psg;
    GrpoRow {
        id,
        images: vec![s.rec.image.clone()],
        width: crate::scale::TARGET_W,
        height: crate::scale::TARGET_H,
        messages: vec![Message::user(prompt.to_owned())],
        solution: s.solution.clone(),
        video_id: if psg { None } else { s.rec.video.clone() },
        t: if psg { None } else { Some(s.rec.t.unwrap_or(id as i64)) },
        image_id: if psg { stem } else { None },
        split: if psg { Some(if s.rec.split == "test" { "test" } else { "train" }) } else { None },
    }
}

fn write_rows(
    ds: Dataset,
    split: Split,
    rows: &[Sample<'_>],
    out: &Path,
    sum: &mut Summary,
) -> Result<(), PrepareError> {
    let mut files: Vec<(String, &[Sample<'_>])> = vec![(split.as_str().to_owned(), rows)];
    if split == Split::Test {
        files.push(("eval".into(), &rows[..rows.len().min(ds.eval_size())]));
    }
    let variants: &[bool] = if ds == Dataset::Psg { &[false] } else { &[false, true] };
    for (name, rows) in files {
        for &noprev in variants {
            let file = if noprev { format!("{name}_noprevgraph.jsonl") } else { format!("{name}.jsonl") };
            let (mut sft, mut grpo) = (String::new(), String::new());
            for (i, s) in rows.iter().enumerate() {
                let prompt = if noprev { &s.prompt_noprev } else { &s.prompt };
                let row = SftRow {
                    messages: vec![Message::user(prompt.clone()), Message::assistant(s.target.clone())],
                    images: vec![s.rec.image.clone()],
                };
                let grpo_prompt = if noprev { &s.prompt_noprev } else { &s.grpo_prompt };
                for (buf, line) in
                    [(&mut sft, export::py_json(&row)), (&mut grpo, export::py_json(&grpo_row(ds, i, s, grpo_prompt)))]
                {
                    buf.push_str(&line.unwrap_or_default());
                    buf.push('\n');
                }
            }
            for (path, text) in [(out.join(&file), sft), (out.join("grpo").join(&file), grpo)] {
                write_atomic(&path, text.as_bytes())
                    .map_err(|source| PrepareError::Write { path: path.clone(), source })?;
                sum.outputs.push(path.display().to_string());
            }
        }
    }
    Ok(())
}
