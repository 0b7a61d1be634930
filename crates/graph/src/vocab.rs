//! Fixed vocabularies of the three datasets, in the orders the reference code uses (indices matter: the
//! classical AG metric works on class indices, and the PSG prompt lists the classes in this order).
//!
//! - Action Genome: 37 object classes (index 0 is `background`, as in OED) and 26 predicates, grouped as
//!   attention (0–2), spatial (3–8) and contacting (9–25).
//! - PSG: 133 object classes (80 things then 53 stuff) and 56 predicates, written with spaces as in the SFT prompt.

/// Action Genome object classes, OED order; index 0 is the background class.
pub const AG_OBJECT_CLASSES: [&str; 37] = [
    "background",
    "person",
    "bag",
    "bed",
    "blanket",
    "book",
    "box",
    "broom",
    "chair",
    "closet/cabinet",
    "clothes",
    "cup/glass/bottle",
    "dish",
    "door",
    "doorknob",
    "doorway",
    "floor",
    "food",
    "groceries",
    "laptop",
    "light",
    "medicine",
    "mirror",
    "paper/notebook",
    "phone/camera",
    "picture",
    "pillow",
    "refrigerator",
    "sandwich",
    "shelf",
    "shoe",
    "sofa/couch",
    "table",
    "television",
    "towel",
    "vacuum",
    "window",
];

/// Attention predicates (global indices 0–2).
pub const AG_ATTENTION: [&str; 3] = ["looking_at", "not_looking_at", "unsure"];

/// Spatial predicates (global indices 3–8).
pub const AG_SPATIAL: [&str; 6] = ["above", "beneath", "in_front_of", "behind", "on_the_side_of", "in"];

/// Contacting predicates (global indices 9–25).
pub const AG_CONTACTING: [&str; 17] = [
    "carrying",
    "covered_by",
    "drinking_from",
    "eating",
    "have_it_on_the_back",
    "holding",
    "leaning_on",
    "lying_on",
    "not_contacting",
    "other_relationship",
    "sitting_on",
    "standing_on",
    "touching",
    "twisting",
    "wearing",
    "wiping",
    "writing_on",
];

/// Offset of the spatial block in [`AG_PREDICATES`].
pub const AG_SPATIAL_OFFSET: usize = AG_ATTENTION.len();
/// Offset of the contacting block in [`AG_PREDICATES`].
pub const AG_CONTACTING_OFFSET: usize = AG_ATTENTION.len() + AG_SPATIAL.len();
/// Number of AG predicate classes.
pub const AG_NUM_PREDICATES: usize = AG_CONTACTING_OFFSET + AG_CONTACTING.len();

/// All 26 AG predicates in global index order (attention, spatial, contacting), built from the three blocks.
pub const AG_PREDICATES: [&str; AG_NUM_PREDICATES] = {
    let mut out = [""; AG_NUM_PREDICATES];
    let mut i = 0;
    while i < AG_ATTENTION.len() {
        out[i] = AG_ATTENTION[i];
        i += 1;
    }
    let mut i = 0;
    while i < AG_SPATIAL.len() {
        out[AG_SPATIAL_OFFSET + i] = AG_SPATIAL[i];
        i += 1;
    }
    let mut i = 0;
    while i < AG_CONTACTING.len() {
        out[AG_CONTACTING_OFFSET + i] = AG_CONTACTING[i];
        i += 1;
    }
    out
};

/// PSG object classes: 80 COCO things followed by 53 stuff classes, with spaces as in the SFT prompt.
pub const PSG_OBJECT_CLASSES: [&str; 133] = [
    // things
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    // stuff
    "banner",
    "blanket",
    "bridge",
    "cardboard",
    "counter",
    "curtain",
    "door-stuff",
    "floor-wood",
    "flower",
    "fruit",
    "gravel",
    "house",
    "light",
    "mirror-stuff",
    "net",
    "pillow",
    "platform",
    "playingfield",
    "railroad",
    "river",
    "road",
    "roof",
    "sand",
    "sea",
    "shelf",
    "snow",
    "stairs",
    "tent",
    "towel",
    "wall-brick",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "window-blind",
    "window-other",
    "tree-merged",
    "fence-merged",
    "ceiling-merged",
    "sky-other-merged",
    "cabinet-merged",
    "table-merged",
    "floor-other-merged",
    "pavement-merged",
    "mountain-merged",
    "grass-merged",
    "dirt-merged",
    "paper-merged",
    "food-other-merged",
    "building-other-merged",
    "rock-merged",
    "wall-other-merged",
    "rug-merged",
];

/// PSG predicates, with spaces as in the SFT prompt.
pub const PSG_PREDICATES: [&str; 56] = [
    "over",
    "in front of",
    "beside",
    "on",
    "in",
    "attached to",
    "hanging from",
    "on back of",
    "falling off",
    "going down",
    "painted on",
    "walking on",
    "running on",
    "crossing",
    "standing on",
    "lying on",
    "sitting on",
    "flying over",
    "jumping over",
    "jumping from",
    "wearing",
    "holding",
    "carrying",
    "looking at",
    "guiding",
    "kissing",
    "eating",
    "drinking",
    "feeding",
    "biting",
    "catching",
    "picking",
    "playing with",
    "chasing",
    "climbing",
    "cleaning",
    "playing",
    "touching",
    "pushing",
    "pulling",
    "opening",
    "cooking",
    "talking to",
    "throwing",
    "slicing",
    "driving",
    "riding",
    "parked on",
    "driving on",
    "about to hit",
    "kicking",
    "swinging",
    "entering",
    "exiting",
    "enclosing",
    "leaning on",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ag_predicates_are_the_three_blocks_in_order() {
        let joined: Vec<&str> =
            AG_ATTENTION.iter().chain(AG_SPATIAL.iter()).chain(AG_CONTACTING.iter()).copied().collect();
        assert_eq!(joined, AG_PREDICATES.to_vec());
        assert_eq!((AG_SPATIAL_OFFSET, AG_CONTACTING_OFFSET), (3, 9));
        assert_eq!(AG_PREDICATES[17], "not_contacting");
    }

    #[test]
    fn vocabularies_have_no_duplicates() {
        for list in [&AG_OBJECT_CLASSES[..], &AG_PREDICATES[..], &PSG_OBJECT_CLASSES[..], &PSG_PREDICATES[..]] {
            let set: HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), list.len());
        }
        assert_eq!(PSG_OBJECT_CLASSES[79], "toothbrush");
        assert_eq!(PSG_OBJECT_CLASSES[80], "banner");
        assert_eq!(AG_OBJECT_CLASSES[36], "window");
    }
}
