//! Writing synthetic scenes in the three real layouts, one folder per dataset:
//!
//! - `psg/`: R1-SGG rows (`image_id`, `objects`, `relationships`) as the Hugging Face export has them:
//!   `annotations/train_annotations.json` (a JSON list; lists inline, images as `image_path` → `images/*.png`) and
//!   `annotations/test_annotations.jsonl` (JSON lines; `objects`/`relationships` as JSON strings, the image embedded
//!   as base64 PNG bytes in `image.bytes`). Boxes are xyxy native pixels with an exclusive right/bottom edge.
//! - `psg_json/`: the same images in the official OpenPSG form, `psg.json` + `coco/{train2017,val2017}/*.png`
//!   ([`write_psg_json`]).
//! - `pvsg/`: `pvsg.json` (official shape; `objects`/`relations` list only the synthetic vocabulary), and for every
//!   video `vidor/frames/<id>/0000.png…` plus single-channel palette masks `vidor/masks/<id>/0000.png…` whose pixel
//!   value is the `object_id`. Relation spans are inclusive frame ranges.
//! - `ag/`: `annotations/object_bbox_and_relationship.pkl` and `annotations/person_bbox.pkl` (protocol-3 pickles,
//!   person boxes as numpy `float32` (1, 4) arrays, written by [`crate::pickle::write`](mod@crate::pickle::write)), `annotations/frame_list.txt`
//!   and `frames/<VIDEO>.mp4/<%06d>.png`. An object hidden behind another in a frame is written as AG writes
//!   invisible objects: `visible: False`, `bbox: None`, label lists `None`.
//!
//! Boxes are the extent of each object's visible pixels. Every fourth image (`i % 4 == 3`) and every third video
//! (`j % 3 == 2`) is test (PVSG `val`).

use super::render::{colour, render, Canvas};
use super::{ag_labels, generate, relations, step, Flavour, Item, Kind, Rel, Rng, Scene, IMAGE_SIZES, VIDEO_SIZE};
use crate::pickle::{self, Value};
use base64::Engine;
use rayon::prelude::*;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    pub images: usize,
    pub videos: usize,
    /// Frames per video.
    pub frames: usize,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SynthSummary {
    pub psg_images: usize,
    pub pvsg_videos: usize,
    pub pvsg_frames: usize,
    pub ag_videos: usize,
    pub ag_frames: usize,
}

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("failed to write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to encode {}: {what}", path.display())]
    Encode { path: PathBuf, what: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io { path: path.to_owned(), source }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

fn png_bytes(c: &Canvas, path: &Path) -> Result<Vec<u8>, SynthError> {
    let mut buf = std::io::Cursor::new(Vec::new());
    c.image
        .write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| SynthError::Encode { path: path.to_owned(), what: e.to_string() })?;
    Ok(buf.into_inner())
}

/// A single-channel palette PNG of the id mask (palette entry `i` = the colour of item `i − 1`, 0 black).
fn mask_png(scene: &Scene, mask: &[u8], path: &Path) -> Result<Vec<u8>, SynthError> {
    let mut palette = vec![0u8; 256 * 3];
    for (i, it) in scene.items.iter().enumerate().take(255) {
        palette[3 * (i + 1)..3 * (i + 2)].copy_from_slice(&colour(it.kind));
    }
    let enc_err = |e: png::EncodingError| SynthError::Encode { path: path.to_owned(), what: e.to_string() };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, scene.width, scene.height);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(palette);
    let mut w = enc.write_header().map_err(enc_err)?;
    w.write_image_data(mask).map_err(enc_err)?;
    w.finish().map_err(enc_err)?;
    Ok(out)
}

/// Visible extent per mask id: `[x1, y1, x2, y2]` with exclusive right/bottom edges.
pub fn visible_boxes(mask: &[u8], width: u32) -> BTreeMap<u8, [i64; 4]> {
    let mut out: BTreeMap<u8, [i64; 4]> = BTreeMap::new();
    for (i, &id) in mask.iter().enumerate() {
        if id == 0 {
            continue;
        }
        let (x, y) = ((i % width as usize) as i64, (i / width as usize) as i64);
        let b = out.entry(id).or_insert([x, y, x + 1, y + 1]);
        *b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
    }
    out
}

const STREAM_PSG: u64 = 1;
const STREAM_PVSG: u64 = 2;
const STREAM_AG: u64 = 3;

/// One synthetic still image: its id, PNG bytes, visible objects (`(kind index, name, box)`) and relations between
/// them (positions in that object list).
struct PsgScene {
    image_id: String,
    test: bool,
    png: Vec<u8>,
    objects: Vec<(usize, &'static str, [i64; 4])>,
    rels: Vec<(usize, Rel, usize)>,
}

fn psg_scene(i: usize, seed: u64, root: &Path) -> Result<PsgScene, SynthError> {
    let mut rng = Rng::for_item(seed, STREAM_PSG, i as u64);
    let (w, h) = IMAGE_SIZES[rng.range(0, IMAGE_SIZES.len() as i64 - 1) as usize];
    let scene = generate(&mut rng, w, h, false, false);
    let c = render(&scene);
    let boxes = visible_boxes(&c.mask, w);
    let image_id = format!("synth_{i:06}");
    let mask_id = |k: usize| u8::try_from(k + 1).unwrap_or(u8::MAX);
    let visible: Vec<usize> = (0..scene.items.len()).filter(|&k| boxes.contains_key(&mask_id(k))).collect();
    let objects = visible.iter().map(|&k| (k, scene.items[k].kind.name(Flavour::Psg), boxes[&mask_id(k)])).collect();
    let pos = |k: usize| visible.iter().position(|&v| v == k);
    let rels = relations(&scene.items).into_iter().filter_map(|(s, r, o)| Some((pos(s)?, r, pos(o)?))).collect();
    let png = png_bytes(&c, &root.join(format!("images/{image_id}.png")))?;
    Ok(PsgScene { image_id, test: i % 4 == 3, png, objects, rels })
}

fn psg_row(i: usize, seed: u64, root: &Path) -> Result<(bool, Json), SynthError> {
    let sc = psg_scene(i, seed, root)?;
    let raw_id = |p: usize| format!("{}.{}", sc.objects[p].1, sc.objects[p].0 + 1);
    let objects: Vec<Json> = (0..sc.objects.len()).map(|p| json!({"id": raw_id(p), "bbox": sc.objects[p].2})).collect();
    let rels: Vec<Json> = sc
        .rels
        .iter()
        .map(|&(s, r, o)| json!({"subject": raw_id(s), "predicate": r.name(Flavour::Psg), "object": raw_id(o)}))
        .collect();
    let image_id = &sc.image_id;
    let rel_path = format!("images/{image_id}.png");
    let row = if sc.test {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&sc.png);
        json!({"image_id": image_id, "image": {"bytes": b64, "path": Json::Null},
               "objects": Json::Array(objects).to_string(), "relationships": Json::Array(rels).to_string()})
    } else {
        write_file(&root.join(&rel_path), &sc.png)?;
        json!({"image_id": image_id, "objects": objects, "relationships": rels, "image_path": rel_path})
    };
    Ok((sc.test, row))
}

/// Writes the same images as [`write_psg`] in the official OpenPSG layout under `OUT/psg_json`: `psg.json` (the
/// real 80 thing, 53 stuff and 56 predicate classes; 0-based `category_id` and predicate indices; float xyxy boxes
/// in `annotations`; the test images listed in `test_image_ids`; `segments_info` with COCO-panoptic ids
/// `R + 256·G + 65536·B` of each object's colour) and the images as `coco/{train2017,val2017}/<id>.png`. No
/// panoptic PNGs are written (the reader does not need them). Returns the number of images.
pub fn write_psg_json(out: &Path, o: &SynthOptions) -> Result<usize, SynthError> {
    use sgvlm_graph::vocab::{PSG_OBJECT_CLASSES, PSG_PREDICATES};
    let root = out.join("psg_json");
    let scenes: Vec<PsgScene> =
        (0..o.images).into_par_iter().map(|i| psg_scene(i, o.seed, &root)).collect::<Result<_, _>>()?;
    let cat = |n: &str| PSG_OBJECT_CLASSES.iter().position(|c| *c == n).unwrap_or(0);
    let pred = |r: Rel| PSG_PREDICATES.iter().position(|c| *c == r.name(Flavour::Psg)).unwrap_or(0);
    let mut data = Vec::with_capacity(scenes.len());
    for (i, sc) in scenes.iter().enumerate() {
        let dir = if sc.test { "val2017" } else { "train2017" };
        let file_name = format!("{dir}/{}.png", sc.image_id);
        write_file(&root.join("coco").join(&file_name), &sc.png)?;
        let (w, h) = image::load_from_memory(&sc.png).map(|im| (im.width(), im.height())).unwrap_or((0, 0));
        let segments: Vec<Json> = sc
            .objects
            .iter()
            .enumerate()
            .map(|(p, (_, name, b))| {
                let thing = cat(name) < 80;
                json!({"id": 1 + p * 65793, "category_id": cat(name), "iscrowd": 0, "isthing": u8::from(thing),
                       "area": (b[2] - b[0]) * (b[3] - b[1])})
            })
            .collect();
        let anns: Vec<Json> = sc
            .objects
            .iter()
            .map(|(_, name, b)| {
                let f: Vec<f64> = b.iter().map(|&v| v as f64).collect();
                json!({"bbox": f, "bbox_mode": 0, "category_id": cat(name)})
            })
            .collect();
        let rels: Vec<Json> = sc.rels.iter().map(|&(s, r, o)| json!([s, o, pred(r)])).collect();
        data.push(json!({"file_name": file_name, "height": h, "width": w, "image_id": format!("{}", 900_000 + i),
            "pan_seg_file_name": format!("panoptic_{dir}/{}.png", sc.image_id), "segments_info": segments,
            "relations": rels, "annotations": anns, "coco_image_id": format!("{i}")}));
    }
    let test: Vec<String> = (0..scenes.len()).filter(|&i| scenes[i].test).map(|i| format!("{}", 900_000 + i)).collect();
    let doc = json!({"data": data, "thing_classes": &PSG_OBJECT_CLASSES[..80], "stuff_classes": &PSG_OBJECT_CLASSES[80..],
                     "predicate_classes": &PSG_PREDICATES[..], "test_image_ids": test});
    write_file(&root.join("psg.json"), doc.to_string().as_bytes())?;
    Ok(scenes.len())
}

/// Writes `OUT/psg`; returns the number of images.
pub fn write_psg(out: &Path, o: &SynthOptions) -> Result<usize, SynthError> {
    let root = out.join("psg");
    let rows: Vec<(bool, Json)> =
        (0..o.images).into_par_iter().map(|i| psg_row(i, o.seed, &root)).collect::<Result<_, _>>()?;
    let train: Vec<&Json> = rows.iter().filter(|(t, _)| !t).map(|(_, r)| r).collect();
    let test: String = rows.iter().filter(|(t, _)| *t).map(|(_, r)| format!("{r}\n")).collect();
    let ann = root.join("annotations");
    write_file(
        &ann.join("train_annotations.json"),
        Json::from(train.into_iter().cloned().collect::<Vec<_>>()).to_string().as_bytes(),
    )?;
    write_file(&ann.join("test_annotations.jsonl"), test.as_bytes())?;
    Ok(rows.len())
}

/// A video's frames: the scene at each time step (the first frame is the generated scene).
fn video(seed: u64, stream: u64, j: usize, frames: usize, one_person: bool) -> (Rng, Vec<Scene>) {
    let mut rng = Rng::for_item(seed, stream, j as u64);
    let mut scene = generate(&mut rng, VIDEO_SIZE.0, VIDEO_SIZE.1, one_person, true);
    let mut out = Vec::with_capacity(frames);
    for _ in 0..frames {
        out.push(scene.clone());
        step(&mut scene);
    }
    (rng, out)
}

/// Inclusive runs of consecutive frame indices.
fn spans(frames: &[usize]) -> Vec<[usize; 2]> {
    let mut out: Vec<[usize; 2]> = Vec::new();
    for &f in frames {
        match out.last_mut() {
            Some(s) if s[1] + 1 == f => s[1] = f,
            _ => out.push([f, f]),
        }
    }
    out
}

fn pvsg_video(j: usize, o: &SynthOptions, root: &Path) -> Result<Json, SynthError> {
    let (mut rng, scenes) = video(o.seed, STREAM_PVSG, j, o.frames, false);
    let video_id = format!("{:04}_{:010}", j + 1, rng.next_u64() % 10_000_000_000);
    let mut active: BTreeMap<(usize, usize, &'static str), Vec<usize>> = BTreeMap::new();
    for (t, scene) in scenes.iter().enumerate() {
        let c = render(scene);
        let frame = root.join(format!("vidor/frames/{video_id}/{t:04}.png"));
        write_file(&frame, &png_bytes(&c, &frame)?)?;
        let mask = root.join(format!("vidor/masks/{video_id}/{t:04}.png"));
        write_file(&mask, &mask_png(scene, &c.mask, &mask)?)?;
        for (s, r, ob) in relations(&scene.items) {
            active.entry((s + 1, ob + 1, r.name(Flavour::Pvsg))).or_default().push(t);
        }
    }
    let items = &scenes[0].items;
    let objects: Vec<Json> = items
        .iter()
        .enumerate()
        .map(|(k, it)| json!({"object_id": k + 1, "category": it.kind.name(Flavour::Pvsg), "is_thing": true, "status": []}))
        .collect();
    let rels: Vec<Json> = active.into_iter().map(|((s, ob, p), ts)| json!([s, ob, p, spans(&ts)])).collect();
    let (w, h) = VIDEO_SIZE;
    Ok(json!({"video_id": video_id,
              "meta": {"height": h, "width": w, "fps": 5, "duration": o.frames as f64 / 5.0, "num_frames": o.frames},
              "objects": objects, "relations": rels, "captions": [], "qa_pairs": [], "summary": ""}))
}

const KINDS: [Kind; 7] = [Kind::Person, Kind::Ball, Kind::Cup, Kind::Book, Kind::Plant, Kind::Table, Kind::Basket];
const RELS: [Rel; 5] = [Rel::Holding, Rel::In, Rel::On, Rel::Over, Rel::Beside];

/// Writes `OUT/pvsg`; returns (videos, frames).
pub fn write_pvsg(out: &Path, o: &SynthOptions) -> Result<(usize, usize), SynthError> {
    let root = out.join("pvsg");
    let data: Vec<Json> = (0..o.videos).into_par_iter().map(|j| pvsg_video(j, o, &root)).collect::<Result<_, _>>()?;
    let ids = |test: bool| -> Vec<Json> {
        data.iter().enumerate().filter(|(j, _)| (j % 3 == 2) == test).map(|(_, v)| v["video_id"].clone()).collect()
    };
    let empty = json!({"train": [], "val": []});
    let doc = json!({
        "objects": {"thing": KINDS.iter().map(|k| k.name(Flavour::Pvsg)).collect::<Vec<_>>(), "stuff": []},
        "relations": RELS.iter().map(|r| r.name(Flavour::Pvsg)).collect::<Vec<_>>(),
        "split": {"vidor": {"train": ids(false), "val": ids(true)}, "epic_kitchen": empty, "ego4d": empty},
        "data": data,
    });
    write_file(&root.join("pvsg.json"), doc.to_string().as_bytes())?;
    Ok((o.videos, o.videos * o.frames))
}

fn s(x: &str) -> Value {
    Value::Str(x.to_owned())
}

fn ag_frame(scene: &Scene, key: &str, set: &str, boxes: &BTreeMap<u8, [i64; 4]>) -> (Value, Value) {
    let rels = relations(&scene.items);
    let person = scene.items.iter().position(|it| it.kind == Kind::Person);
    let vis = |k: usize| u8::try_from(k + 1).ok().and_then(|id| boxes.get(&id)).copied();
    let (video, frame) = key.split_once('/').unwrap_or((key, ""));
    let stem = frame.trim_end_matches(".png");
    let mut items = Vec::new();
    for (k, it) in scene.items.iter().enumerate() {
        if Some(k) == person {
            continue;
        }
        let class = it.kind.name(Flavour::Ag);
        let meta = Value::Dict(vec![
            (s("tag"), s(&format!("{video}/{}/{stem}", class.replace('/', "_")))),
            (s("set"), s(set)),
        ]);
        let fields = match (vis(k), person.map(|p| &scene.items[p])) {
            (Some(b), Some(p)) => {
                let held = rels.iter().any(|&(a, r, ob)| Some(a) == person && r == Rel::Holding && ob == k);
                let [att, spa, con] = ag_labels(p, it as &Item, held);
                let xywh = [b[0], b[1], b[2] - b[0], b[3] - b[1]].map(|v| Value::Float(v as f64));
                [
                    Value::Tuple(xywh.to_vec()),
                    Value::List(vec![s(att)]),
                    Value::List(vec![s(spa)]),
                    Value::List(vec![s(con)]),
                    Value::Bool(true),
                ]
            }
            _ => [Value::None, Value::None, Value::None, Value::None, Value::Bool(false)],
        };
        let [bbox, att, spa, con, visible] = fields;
        items.push(Value::Dict(vec![
            (s("class"), s(class)),
            (s("bbox"), bbox),
            (s("attention_relationship"), att),
            (s("spatial_relationship"), spa),
            (s("contacting_relationship"), con),
            (s("visible"), visible),
            (s("metadata"), meta),
        ]));
    }
    let pbox: Vec<f64> = person.and_then(vis).map(|b| b.iter().map(|&v| v as f64).collect()).unwrap_or_default();
    let n = pbox.len() / 4;
    let pentry = Value::Dict(vec![
        (s("bbox"), Value::Array { shape: vec![n, 4], data: pbox }),
        (s("bbox_score"), Value::Array { shape: vec![n], data: vec![0.99; n] }),
        (s("bbox_size"), Value::Tuple(vec![Value::Int(i64::from(scene.width)), Value::Int(i64::from(scene.height))])),
        (s("bbox_mode"), s("xyxy")),
    ]);
    (Value::List(items), pentry)
}

type AgVideo = Vec<(String, Value, Value)>;

fn ag_video(j: usize, o: &SynthOptions, root: &Path) -> Result<AgVideo, SynthError> {
    let (mut rng, scenes) = video(o.seed, STREAM_AG, j, o.frames, true);
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let name: String = (0..5).map(|_| char::from(LETTERS[(rng.next_u64() % 36) as usize])).collect();
    let set = if j % 3 == 2 { "test" } else { "train" };
    let mut out = Vec::new();
    for (t, scene) in scenes.iter().enumerate() {
        let key = format!("{name}.mp4/{:06}.png", 1 + 5 * t);
        let c = render(scene);
        let path = root.join("frames").join(&key);
        write_file(&path, &png_bytes(&c, &path)?)?;
        let (items, person) = ag_frame(scene, &key, set, &visible_boxes(&c.mask, scene.width));
        out.push((key, items, person));
    }
    Ok(out)
}

/// Writes `OUT/ag`; returns (videos, frames).
pub fn write_ag(out: &Path, o: &SynthOptions) -> Result<(usize, usize), SynthError> {
    let root = out.join("ag");
    let videos: Vec<AgVideo> =
        (0..o.videos).into_par_iter().map(|j| ag_video(j, o, &root)).collect::<Result<_, _>>()?;
    let frames: Vec<&(String, Value, Value)> = videos.iter().flatten().collect();
    let objects = Value::Dict(frames.iter().map(|(k, items, _)| (s(k), items.clone())).collect());
    let persons = Value::Dict(frames.iter().map(|(k, _, p)| (s(k), p.clone())).collect());
    let ann = root.join("annotations");
    for (name, v) in [("object_bbox_and_relationship.pkl", &objects), ("person_bbox.pkl", &persons)] {
        let path = ann.join(name);
        let bytes =
            pickle::write::to_vec(v).map_err(|e| SynthError::Encode { path: path.clone(), what: e.to_string() })?;
        write_file(&path, &bytes)?;
    }
    let list: String = frames.iter().map(|(k, _, _)| format!("{k}\n")).collect();
    write_file(&ann.join("frame_list.txt"), list.as_bytes())?;
    Ok((o.videos, frames.len()))
}

/// Writes all three datasets under `out`.
pub fn write_all(out: &Path, o: &SynthOptions) -> Result<SynthSummary, SynthError> {
    let psg_images = write_psg(out, o)?;
    write_psg_json(out, o)?;
    let (pvsg_videos, pvsg_frames) = write_pvsg(out, o)?;
    let (ag_videos, ag_frames) = write_ag(out, o)?;
    Ok(SynthSummary { psg_images, pvsg_videos, pvsg_frames, ag_videos, ag_frames })
}
