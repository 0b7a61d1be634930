//! Differential check: every graph document [`encode_graph`] writes decodes, through the `toon-format` crate in
//! strict mode, to exactly [`graph_to_json_value`] — including labels that need quoting.

use proptest::prelude::*;
use sgvlm_graph::toon::spec::{encode_graph, graph_to_json_value, graph_to_tvalue, TValue};
use sgvlm_graph::{AgGraph, AgPair, BBox, Object, Relation, SceneGraph, TripletGraph};

/// Realistic labels plus every quoting hazard of §7.2.
const LABELS: &[&str] = &[
    "person",
    "traffic light",
    "sky-other-merged",
    "in-front-of",
    "cup/glass/bottle",
    "not_looking_at",
    "sitting_on",
    "a.b",
    "true",
    "false",
    "null",
    "3",
    "-3.5",
    "1e5",
    "05",
    "+1",
    "a:b",
    "a,b",
    "a|b",
    "-x",
    "-",
    "#x",
    "#",
    "",
    " lead",
    "trail ",
    "tab\there",
    "new\nline",
    "quote\"d",
    "back\\slash",
    "[x]",
    "{y}",
    "café",
    "你好",
    "🚀 rocket",
    "ctl\u{1}x",
];

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(LABELS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn objects(max: usize) -> impl Strategy<Value = Vec<Object>> {
    proptest::collection::vec((label(), any::<[i32; 4]>()), 0..max).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (name, b))| Object { id: i as u32 + 1, name, bbox: BBox::from(b.map(i64::from)) })
            .collect()
    })
}

fn triplet() -> impl Strategy<Value = SceneGraph> {
    let rel = (0u32..20, label(), 0u32..20).prop_map(|(subj, pred, obj)| Relation { subj, pred, obj });
    (objects(8), proptest::collection::vec(rel, 0..8))
        .prop_map(|(objects, relations)| TripletGraph { objects, relations }.into())
}

fn ag() -> impl Strategy<Value = SceneGraph> {
    let list = || proptest::collection::vec(label(), 0..4);
    let pair = (0u32..20, list(), list(), list(), 0u32..20)
        .prop_map(|(subj, attention, spatial, contacting, obj)| AgPair { subj, attention, spatial, contacting, obj });
    (objects(6), proptest::collection::vec(pair, 0..6)).prop_map(|(objects, pairs)| AgGraph { objects, pairs }.into())
}

fn decode(text: &str) -> serde_json::Value {
    let opts = toon_format::DecodeOptions::new().with_strict(true);
    match toon_format::decode(text, &opts) {
        Ok(v) => v,
        Err(e) => panic!("toon-format rejected our document: {e}\n{text}"),
    }
}

fn check(g: &SceneGraph) -> Result<(), TestCaseError> {
    let text = encode_graph(g);
    let decoded = decode(&text);
    prop_assert_eq!(&decoded, &graph_to_json_value(g), "document:\n{}", text);
    // Key order too: this test build has `preserve_order`, so the decoded map keeps document order.
    prop_assert_eq!(TValue::from(&decoded), graph_to_tvalue(g));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn triplet_graphs_decode_to_their_model(g in triplet()) {
        check(&g)?;
    }

    #[test]
    fn ag_graphs_decode_to_their_model(g in ag()) {
        check(&g)?;
    }
}

#[test]
fn every_hazard_label_in_one_graph() {
    let objects = LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| Object { id: i as u32 + 1, name: (*l).into(), bbox: BBox::new(0, 0, 1, 1) })
        .collect::<Vec<_>>();
    let relations = LABELS.iter().map(|l| Relation { subj: 1, pred: (*l).into(), obj: 2 }).collect();
    let pairs = vec![AgPair {
        subj: 1,
        attention: LABELS.iter().map(|l| (*l).to_owned()).collect(),
        spatial: vec![],
        contacting: vec!["holding".into()],
        obj: 2,
    }];
    check(&TripletGraph { objects: objects.clone(), relations }.into()).unwrap();
    check(&AgGraph { objects, pairs }.into()).unwrap();
}
