//! Synthetic scenes: small rendered worlds whose scene graphs follow from what is drawn, written in the three real
//! dataset formats (see [`write`](mod@write)) so that every reader, `sgvlm data prepare` and training can run anywhere.
//!
//! ## The world
//! A scene is a wall over a floor band (the floor starts at 80% of the height). Seven kinds of object, each with
//! its own shape and colour, so a model can tell them apart from pixels alone:
//!
//! | kind | look | PSG name | PVSG name | AG name | role |
//! |---|---|---|---|---|---|
//! | person | dark-blue stick figure, skin head, an eye on the facing side, one arm out | person | adult | person | can hold |
//! | ball | red disc | sports ball | ball | food | small |
//! | cup | cyan upright rectangle | cup | cup | cup/glass/bottle | small |
//! | book | orange flat rectangle | book | book | book | small |
//! | plant | green triangle | potted plant | plant | groceries | small |
//! | table | brown board on two legs | dining table | table | table | support |
//! | basket | purple U (open top) | bowl | basket | box | container |
//!
//! Sizes are given for a 640×480 canvas and scale with the image. Native image sizes are drawn from
//! [`IMAGE_SIZES`] (so box scaling to 640×480 is exercised); video frames are 480×360.
//!
//! ## Placement (per scene, from a seeded RNG)
//! 1. 2–4 *standing* objects (person, table, basket, or a small object) stand on the floor at distinct,
//!    non-overlapping x positions, their feet at the floor line plus a depth offset of up to 8% of the height;
//! 2. each table carries, with probability 0.7, one or two small objects resting on its board;
//! 3. each basket holds, with probability 0.7, one small object inside;
//! 4. each person holds, with probability 0.6, one small object at the end of the arm;
//! 5. with probability 0.5 a ball floats in the air, somewhere above the standing objects.
//!
//! ## Relations (computed from the final boxes, not from the placement story)
//! Boxes are `[x1, y1, x2, y2)` in native pixels. For each unordered pair at most one relation is emitted, the
//! first rule that holds in this order:
//! - **holding** (person → small): the small object's centre is within `0.75·max(w, h)` of the person's hand
//!   (the end of the arm: the facing side of the box, 45% down);
//! - **in** (small → basket): the small box lies inside the basket box;
//! - **on** (small → table): the small box's bottom is within 2 px of the table's top and at least half of its
//!   width overlaps the table;
//! - **over** (A → B): A's bottom is more than 2 px above B's top and their horizontal overlap is at least 30% of
//!   the narrower box;
//! - **beside** (left → right, i.e. "left of"): the boxes do not overlap horizontally, the gap is at most half
//!   the wider box, and they share at least half of the lower box's height. The subject is always the left one.
//!
//! PSG writes these as `holding, in, on, over, beside`; PVSG as `holding, in, on, over, next to`.
//! Action Genome keeps only person → object pairs, with three lists per object:
//! - attention: `looking_at` when the object is held or lies on the side the person faces within two person
//!   widths, else `not_looking_at`;
//! - spatial: `in_front_of` when its box overlaps the person's, else `above` when it is wholly above the head,
//!   else `on_the_side_of`;
//! - contacting: `holding` when held, else `not_contacting`.
//!
//! ## Videos
//! A video is one scene whose standing objects walk: each gets a horizontal speed of −12…12 px per frame (at
//! 640 wide; some stand still) and bounces off the image edges, carrying what it holds or supports; a floating
//! ball drifts at its own speed. Relations are recomputed on every frame, so they start and stop (a ball passes
//! over a person, two walkers become neighbours), which is what makes the previous frame's graph useful context.
//!
//! Everything is deterministic for a seed: scene `i` of a dataset uses its own RNG seeded from
//! `(seed, dataset, i)`, so scenes can be rendered in parallel and in any order.

pub mod render;
pub mod write;

/// Native sizes of synthetic still images (width, height).
pub const IMAGE_SIZES: [(u32, u32); 4] = [(640, 480), (800, 600), (480, 360), (1024, 768)];
/// Native size of synthetic video frames.
pub const VIDEO_SIZE: (u32, u32) = (480, 360);

/// A deterministic SplitMix64 generator (the only randomness the generator uses; always passed in).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for item `index` of stream `stream` under `seed`.
    pub fn for_item(seed: u64, stream: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.0 ^= r.next_u64() ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The seven object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Person,
    Ball,
    Cup,
    Book,
    Plant,
    Table,
    Basket,
}

/// The small objects (those that can be held, put on a table or in a basket).
pub const SMALL: [Kind; 4] = [Kind::Ball, Kind::Cup, Kind::Book, Kind::Plant];

/// The three datasets a scene can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Psg,
    Pvsg,
    Ag,
}

impl Kind {
    /// The class name in a dataset's vocabulary.
    pub fn name(self, f: Flavour) -> &'static str {
        let [psg, pvsg, ag] = match self {
            Kind::Person => ["person", "adult", "person"],
            Kind::Ball => ["sports ball", "ball", "food"],
            Kind::Cup => ["cup", "cup", "cup/glass/bottle"],
            Kind::Book => ["book", "book", "book"],
            Kind::Plant => ["potted plant", "plant", "groceries"],
            Kind::Table => ["dining table", "table", "table"],
            Kind::Basket => ["bowl", "basket", "box"],
        };
        match f {
            Flavour::Psg => psg,
            Flavour::Pvsg => pvsg,
            Flavour::Ag => ag,
        }
    }

    /// Size range `(w_lo, w_hi, h_lo, h_hi)` on a 640×480 canvas.
    fn size(self) -> (i64, i64, i64, i64) {
        match self {
            Kind::Person => (56, 72, 150, 190),
            Kind::Ball => (28, 40, 0, 0),
            Kind::Cup => (22, 30, 32, 42),
            Kind::Book => (44, 60, 14, 20),
            Kind::Plant => (36, 52, 44, 60),
            Kind::Table => (140, 200, 64, 84),
            Kind::Basket => (90, 120, 60, 80),
        }
    }
}

/// The five triplet relations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rel {
    Holding,
    In,
    On,
    Over,
    Beside,
}

impl Rel {
    /// The predicate in a dataset's vocabulary (PSG and PVSG).
    pub fn name(self, f: Flavour) -> &'static str {
        match (self, f) {
            (Rel::Holding, _) => "holding",
            (Rel::In, _) => "in",
            (Rel::On, _) => "on",
            (Rel::Over, _) => "over",
            (Rel::Beside, Flavour::Pvsg) => "next to",
            (Rel::Beside, _) => "beside",
        }
    }
}

/// One object of a scene, in native pixels (`[x1, y1, x2, y2)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: Kind,
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
    /// Persons: whether the figure faces right (its eye and arm are on that side).
    pub faces_right: bool,
    /// What this item rides with when the scene moves (the holder, support or container), by index.
    pub parent: Option<usize>,
    /// Horizontal speed in pixels per frame (standing objects and floating balls).
    pub vx: i64,
}

impl Item {
    pub fn w(&self) -> i64 {
        self.x2 - self.x1
    }
    pub fn h(&self) -> i64 {
        self.y2 - self.y1
    }
    /// The hand of a person figure: the facing side of its box, 45% down.
    pub fn hand(&self) -> (i64, i64) {
        let x = if self.faces_right { self.x2 } else { self.x1 };
        (x, self.y1 + self.h() * 45 / 100)
    }
}

/// A scene: its native size and its items in drawing order (later items are drawn over earlier ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub items: Vec<Item>,
}

mod layout;
pub use layout::{generate, step};

fn h_overlap(a: &Item, b: &Item) -> i64 {
    (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0)
}

fn v_overlap(a: &Item, b: &Item) -> i64 {
    (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0)
}

fn is_small(k: Kind) -> bool {
    SMALL.contains(&k)
}

/// The relation from `a` to `b` by the rules of the module doc (only the one direction; see [`relations`]).
fn directed(a: &Item, b: &Item) -> Option<Rel> {
    if a.kind == Kind::Person && is_small(b.kind) {
        let (hx, hy) = a.hand();
        let (cx, cy) = ((b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2);
        let reach = 3 * b.w().max(b.h()) / 4;
        if (cx - hx).pow(2) + (cy - hy).pow(2) <= reach * reach {
            return Some(Rel::Holding);
        }
    }
    if is_small(a.kind) && b.kind == Kind::Basket && a.x1 >= b.x1 && a.x2 <= b.x2 && a.y1 >= b.y1 && a.y2 <= b.y2 {
        return Some(Rel::In);
    }
    if is_small(a.kind) && b.kind == Kind::Table && (a.y2 - b.y1).abs() <= 2 && 2 * h_overlap(a, b) >= a.w() {
        return Some(Rel::On);
    }
    None
}

/// Every relation of a scene as `(subject index, relation, object index)`, in pair order.
pub fn relations(items: &[Item]) -> Vec<(usize, Rel, usize)> {
    let mut out = Vec::new();
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let (a, b) = (&items[i], &items[j]);
            if let Some(r) = directed(a, b) {
                out.push((i, r, j));
                continue;
            }
            if let Some(r) = directed(b, a) {
                out.push((j, r, i));
                continue;
            }
            let narrow = a.w().min(b.w());
            if 10 * h_overlap(a, b) >= 3 * narrow {
                if a.y2 < b.y1 - 2 {
                    out.push((i, Rel::Over, j));
                } else if b.y2 < a.y1 - 2 {
                    out.push((j, Rel::Over, i));
                }
                continue;
            }
            let (l, r, li, ri) = if a.x1 <= b.x1 { (a, b, i, j) } else { (b, a, j, i) };
            let gap = r.x1 - l.x2;
            if gap >= 0 && 2 * gap <= l.w().max(r.w()) && 2 * v_overlap(a, b) >= a.h().min(b.h()) {
                out.push((li, Rel::Beside, ri));
            }
        }
    }
    out
}

/// The three Action Genome label lists of object `o` for the person `p` (module doc).
pub fn ag_labels(p: &Item, o: &Item, held: bool) -> [&'static str; 3] {
    let (pc, oc) = ((p.x1 + p.x2) / 2, (o.x1 + o.x2) / 2);
    let facing = if p.faces_right { oc >= pc } else { oc <= pc };
    let looking = held || (facing && (oc - pc).abs() <= 2 * p.w());
    let attention = if looking { "looking_at" } else { "not_looking_at" };
    let spatial = if h_overlap(p, o) > 0 && v_overlap(p, o) > 0 {
        "in_front_of"
    } else if o.y2 <= p.y1 {
        "above"
    } else {
        "on_the_side_of"
    };
    [attention, spatial, if held { "holding" } else { "not_contacting" }]
}

#[cfg(test)]
mod tests;
