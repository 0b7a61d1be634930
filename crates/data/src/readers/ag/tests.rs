use super::*;
use sgvlm_graph::toon::{self, Layout};

fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ag")
}

fn raw(g: &AgGraph) -> String {
    let mut s = String::new();
    toon::write_ag(&mut s, g, &Layout::RAW);
    s
}

#[test]
fn fixture_frames_in_pickle_order() {
    let (frames, skipped) = read_dir(&fixture_root(), true).unwrap();
    assert!(skipped.is_empty());
    let keys: Vec<_> = frames.iter().map(|f| (f.key.as_str(), f.split)).collect();
    assert_eq!(
        keys,
        [
            ("ABCDE.mp4/000012.png", Split::Test),
            ("ABCDE.mp4/000007.png", Split::Test),
            ("FGHIJ.mp4/000003.png", Split::Train),
            ("KLMNO.mp4/000001.png", Split::Train),
        ]
    );
    // Person row 0 only; invisible light skipped; (10.5, 20.5, 30, 40) → 10, 20, round(40.5)=40, round(60.5)=60;
    // spatial list deduplicated.
    assert_eq!(
        raw(&frames[0].graph),
        "obj[3]{id,name,x1,y1,x2,y2}:\n  1,person,24,71,259,268\n  2,table,222,143,479,244\n  \
         3,cup/glass/bottle,10,20,40,60\nrel_pairs[2]{subj,attention,spatial,contacting,obj}:\n  \
         1,[unsure],[in_front_of],[not_contacting],2\n  1,[looking_at],[beneath,behind],[holding],3"
    );
    // Half-to-even on the person box: 24.5 → 24, 70.5 → 70, 258.5 → 258, 267.5 → 268.
    assert_eq!(frames[1].graph.objects[0].bbox, BBox::new(24, 70, 258, 268));
    // All three lists empty: no pair.
    assert_eq!((frames[2].graph.objects.len(), frames[2].graph.pairs.len()), (2, 0));
    // No person box (a (0, 4) array): no person, no pairs.
    assert_eq!(
        raw(&frames[3].graph),
        "obj[1]{id,name,x1,y1,x2,y2}:\n  1,bed,1,2,4,6\nrel_pairs[0]{subj,attention,spatial,contacting,obj}:"
    );
}

#[test]
fn wrong_shapes_are_record_errors() {
    let e = build_frame("k", &Value::Int(3), None, true).unwrap_err();
    assert_eq!(e.to_string(), "record `k`: object annotation is not a list");
    let item = Value::Dict(vec![(Value::Str("bbox".into()), Value::Tuple(vec![Value::Float(1.0)]))]);
    let e = build_frame("k", &Value::List(vec![item]), None, true).unwrap_err();
    assert_eq!(e.what, "item 0 bbox has 1 values, not 4");
    assert_eq!(build_frame("k", &Value::List(vec![Value::None]), None, true).unwrap_err().what, "item 0 is not a dict");
}
