use super::*;
use proptest::prelude::*;
use serde_json::json;

fn sample() -> TripletGraph {
    TripletGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: BBox::new(120, 200, 350, 700) },
            Object { id: 2, name: "traffic light".into(), bbox: BBox::new(-1, 0, 5, 9) },
            Object { id: 3, name: "person".into(), bbox: BBox::new(0, 0, 1, 1) },
        ],
        relations: vec![
            Relation { subj: 1, pred: "standing on".into(), obj: 2 },
            Relation { subj: 3, pred: "looking at".into(), obj: 1 },
        ],
    }
}

#[test]
fn string_snapshot() {
    assert_eq!(
        to_r1sgg_string(&sample()),
        r#"{"objects":[{"id":"person.1","bbox":[120,200,350,700]},{"id":"traffic light.2","bbox":[-1,0,5,9]},{"id":"person.3","bbox":[0,0,1,1]}],"relationships":[{"subject":"person.1","predicate":"standing on","object":"traffic light.2"},{"subject":"person.3","predicate":"looking at","object":"person.1"}]}"#
    );
    assert_eq!(to_r1sgg_string(&TripletGraph::default()), r#"{"objects":[],"relationships":[]}"#);
}

#[test]
fn value_matches_string() {
    let g = sample();
    let parsed: Value = serde_json::from_str(&to_r1sgg_string(&g)).unwrap();
    assert_eq!(to_r1sgg(&g), parsed);
}

#[test]
fn parses_hf_row_with_string_lists_and_extra_keys() {
    let row = json!({
        "image_id": "107900",
        "objects": r#"[{"id": "pizza.a.7", "bbox": [1, 2, 3.0, 4]}, {"id": "table", "bbox": [0, 0, 9, 9]}]"#,
        "relationships": r#"[{"subject": "pizza.a.7", "predicate": "on", "object": "table"}]"#,
    });
    let g = from_r1sgg(&row).unwrap();
    assert_eq!(g.objects[0].name, "pizza.a");
    assert_eq!(g.objects[0].bbox, BBox::new(1, 2, 3, 4));
    assert_eq!((g.objects[1].id, g.objects[1].name.as_str()), (2, "table"));
    assert_eq!(g.relations, vec![Relation { subj: 1, pred: "on".into(), obj: 2 }]);
}

#[test]
fn errors_name_the_index() {
    let err = |v: Value| from_r1sgg(&v).unwrap_err().to_string();
    let obj = |bbox: Value| json!({"objects": [{"id": "a.1", "bbox": [0, 0, 1, 1]}, {"id": "b.2", "bbox": bbox}], "relationships": []});
    assert_eq!(err(obj(json!([1, 2, 3]))), "objects[1].bbox: expected 4 integers, found 3 values");
    assert_eq!(err(obj(json!([1, 2, 3.5, 4]))), "objects[1].bbox: value 2 is not an integer: 3.5");
    assert_eq!(err(obj(json!([1, "2", 3, 4]))), "objects[1].bbox: value 1 is not an integer: \"2\"");
    assert_eq!(
        err(obj(json!([1, 2, 3, 18446744073709551615u64]))),
        "objects[1].bbox: value 3 is not an integer: 18446744073709551615"
    );
    assert_eq!(err(obj(json!(null))), "objects[1].bbox: expected a list of 4 integers, found null");
    assert_eq!(err(json!({"objects": [{"bbox": [0, 0, 1, 1]}], "relationships": []})), "objects[0]: missing `id`");
    assert_eq!(
        err(json!({"objects": [{"id": 3, "bbox": [0, 0, 1, 1]}], "relationships": []})),
        "objects[0]: `id` must be a string, found a number"
    );
    assert_eq!(
        err(
            json!({"objects": [{"id": "a.1", "bbox": [0, 0, 1, 1]}, {"id": "a.1", "bbox": [0, 0, 1, 1]}], "relationships": []})
        ),
        "objects[1]: duplicate id \"a.1\" (first at objects[0])"
    );
    let rel = |r: Value| json!({"objects": [{"id": "a.1", "bbox": [0, 0, 1, 1]}], "relationships": [{"subject": "a.1", "predicate": "p", "object": "a.1"}, r]});
    assert_eq!(
        err(rel(json!({"subject": "a.1", "predicate": "p", "object": "b.2"}))),
        "relationships[1].object: unknown object id \"b.2\""
    );
    assert_eq!(err(rel(json!({"subject": "a.1", "object": "a.1"}))), "relationships[1]: missing `predicate`");
    assert_eq!(err(rel(json!(["a.1"]))), "relationships[1]: expected an object, found a list");
    assert_eq!(err(json!({"objects": []})), "missing `relationships`");
    assert_eq!(err(json!({"objects": {}, "relationships": []})), "`objects`: expected a list, found an object");
    assert_eq!(err(json!([])), "expected a JSON object with `objects` and `relationships`, found a list");
    assert!(err(json!({"objects": "[{", "relationships": []}))
        .starts_with("`objects` (a string holding JSON): invalid JSON:"));
    assert!(from_r1sgg_str("{").unwrap_err().to_string().starts_with("document: invalid JSON:"));
}

#[test]
fn dangling_relation_is_written_but_rejected_on_read() {
    let mut g = sample();
    g.relations.push(Relation { subj: 9, pred: "near".into(), obj: 1 });
    let err = from_r1sgg_str(&to_r1sgg_string(&g)).unwrap_err();
    assert_eq!(err, JsonError::UnknownEndpoint { index: 2, role: "subject", id: "9".into() });
}

fn graph() -> impl Strategy<Value = TripletGraph> {
    let name = prop_oneof!["[a-z]{1,8}( [a-z]{1,6})?", "\\PC{0,10}", Just("a.b".to_owned())];
    proptest::collection::vec((name, any::<[i64; 4]>()), 0..8).prop_flat_map(|objs| {
        let n = objs.len() as u32;
        let objects: Vec<Object> = objs
            .into_iter()
            .enumerate()
            .map(|(i, (name, b))| Object { id: i as u32 + 1, name, bbox: BBox::from(b) })
            .collect();
        let rel = (1..=n.max(1), "\\PC{0,10}", 1..=n.max(1)).prop_map(|(subj, pred, obj)| Relation { subj, pred, obj });
        let rels = proptest::collection::vec(rel, if n == 0 { 0..1 } else { 0..10 });
        (Just(objects), rels).prop_map(|(objects, relations)| TripletGraph { objects, relations })
    })
}

proptest! {
    #[test]
    fn round_trip(g in graph()) {
        prop_assert_eq!(&from_r1sgg_str(&to_r1sgg_string(&g)).unwrap(), &g);
        prop_assert_eq!(&from_r1sgg(&to_r1sgg(&g)).unwrap(), &g);
    }

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,64}") {
        let _ = from_r1sgg_str(&s);
    }
}
