//! The demo's synthetic scenes: the scene streams (training, validation, test, GRPO's confirmation and prompt
//! scenes), one scene as the model sees it and as its answer writes it, the closed vocabularies and the user prompt.

use image::imageops::FilterType;
use sgvlm_data::synth::{self, Flavour, Rng};
use sgvlm_graph::{label, toon, BBox, Object, Relation, SceneGraph, TripletGraph};

use super::{DemoOptions, DemoRecipe};

/// The stream of the held-out test scenes ([`scene`]; training scenes are stream 0, validation scenes stream 1).
pub const TEST_STREAM: u64 = 2;
/// The scene stream of GRPO's confirmation scenes ([`DemoRecipe::grpo_confirm_margin`]).
pub const CONFIRM_STREAM: u64 = 3;
/// The scene stream of GRPO's prompts when they are fresh ([`DemoRecipe::grpo_fresh`]).
pub const GRPO_STREAM: u64 = 4;

/// One synthetic sample: the 640×480 rendering (empty for the demo's training and validation scenes), the
/// model-sized RGB, and the ground-truth answer.
#[derive(Debug, Clone)]
pub struct Scene {
    pub rgb640: image::RgbImage,
    pub small: (Vec<u8>, usize, usize),
    pub graph: TripletGraph,
    /// `<answer>\n…</answer>` (paper layout, no final newline).
    pub answer: String,
}

/// The closed vocabulary of the synthetic PSG task (hyphenated as the strict gate wants names).
pub fn vocabulary() -> (Vec<String>, Vec<String>) {
    use synth::{Kind, Rel};
    let kinds = [Kind::Person, Kind::Ball, Kind::Cup, Kind::Book, Kind::Plant, Kind::Table, Kind::Basket];
    let rels = [Rel::Holding, Rel::In, Rel::On, Rel::Over, Rel::Beside];
    (
        kinds.iter().map(|k| label::hyphenate(k.name(Flavour::Psg))).collect(),
        rels.iter().map(|r| label::hyphenate(r.name(Flavour::Psg))).collect(),
    )
}

/// The demo's fixed user prompt.
pub fn user_prompt() -> String {
    "Scene graph of this 640x480 image as TOON.".to_string()
}

/// The order in which an answer lists the objects (and so numbers them). Both follow from the image alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum ObjectOrder {
    /// Left to right, then top to bottom.
    #[default]
    LeftToRight,
    /// By kind (the order of [`vocabulary`]), then left to right within a kind.
    ByKind,
}

/// The scene stream GRPO's prompts come from and how many ([`DemoRecipe::grpo_fresh`], [`DemoRecipe::grpo_scenes`];
/// never more than SFT's training scenes, so a small demo builds a small pool).
pub fn grpo_scenes(o: &DemoOptions, r: &DemoRecipe) -> (u64, usize) {
    let n = r.grpo_scenes.min(o.train_scenes).max(1);
    (if r.grpo_fresh { GRPO_STREAM } else { 0 }, n)
}

/// Scene `i` of stream `stream` (640×480, PSG names), shown to the model at `size`, objects left to right.
pub fn scene(seed: u64, stream: u64, i: u64, size: (u32, u32)) -> Scene {
    scene_ordered(seed, stream, i, size, ObjectOrder::LeftToRight)
}

/// [`scene`] with the objects listed in `order`.
pub fn scene_ordered(seed: u64, stream: u64, i: u64, size: (u32, u32), order: ObjectOrder) -> Scene {
    let mut rng = Rng::for_item(seed, 0xDE30 + stream, i);
    let s = synth::generate(&mut rng, 640, 480, false, false);
    let canvas = synth::render::render(&s);
    let boxes = synth::write::visible_boxes(&canvas.mask, 640);
    let visible = |k: usize| u8::try_from(k + 1).ok().and_then(|id| boxes.get(&id)).copied();
    // Either order follows from the image; the generator's own order (by a few pixels of foot height) would be
    // noise the model cannot read.
    let mut shown: Vec<(usize, [i64; 4])> = (0..s.items.len()).filter_map(|k| visible(k).map(|b| (k, b))).collect();
    match order {
        ObjectOrder::LeftToRight => shown.sort_by_key(|&(k, b)| (b, k)),
        ObjectOrder::ByKind => shown.sort_by_key(|&(k, b)| (s.items[k].kind as u8, b, k)),
    }
    let mut ids = vec![0u32; s.items.len()];
    let mut objects = Vec::new();
    for (k, b) in shown {
        ids[k] = objects.len() as u32 + 1;
        objects.push(Object {
            id: ids[k],
            name: label::hyphenate(s.items[k].kind.name(Flavour::Psg)),
            bbox: BBox::new(b[0], b[1], b[2], b[3]),
        });
    }
    let mut relations: Vec<Relation> = synth::relations(&s.items)
        .into_iter()
        .filter(|&(a, _, b)| ids[a] > 0 && ids[b] > 0)
        .map(|(a, r, b)| Relation { subj: ids[a], pred: label::hyphenate(r.name(Flavour::Psg)), obj: ids[b] })
        .collect();
    relations.sort_by(|a, b| (a.subj, a.obj, &a.pred).cmp(&(b.subj, b.obj, &b.pred)));
    let graph = TripletGraph { objects, relations };
    let answer = toon::encode_paper(&SceneGraph::Triplet(graph.clone())).trim_end().to_string();
    let small = image::imageops::resize(&canvas.image, size.0, size.1, FilterType::Triangle);
    let (w, h) = small.dimensions();
    Scene { rgb640: canvas.image, small: (small.into_raw(), h as usize, w as usize), graph, answer }
}

/// The head of a paper-layout answer, `<answer>\nobj[N]{…}:\n1,NAME,`: the part fixed by the object count and the
/// first object's name, which no prior can guess.
pub fn answer_head(answer: &str) -> String {
    let mut lines = answer.lines();
    let (a, b, c) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let name: Vec<&str> = c.splitn(3, ',').take(2).collect();
    format!("{a}\n{b}\n{},", name.join(","))
}
