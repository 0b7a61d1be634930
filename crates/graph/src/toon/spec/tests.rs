use super::*;
use crate::types::{AgGraph, AgPair, BBox, Object, Relation, TripletGraph};
use serde_json::json;
use serde_json::Number;

fn enc(v: serde_json::Value) -> String {
    encode_json(&v, &EncodeOptions::default()).unwrap()
}

#[test]
fn quoting_rules() {
    for s in ["", " a", "a ", "\tx", "true", "null", "3", "-3.5", "+1", "1e-6", "05", "a:b", "#x", "-x", "-"] {
        assert!(needs_quotes(s, ','), "{s:?}");
    }
    for s in ["a", "traffic light", "café", "a.b", "1.", ".5", "x-y", "a#b", "a|b"] {
        assert!(!needs_quotes(s, ','), "{s:?}");
    }
    assert!(needs_quotes("a|b", '|'));
    assert!(!needs_quotes("a,b", '\t'));
}

#[test]
fn escapes_and_keys() {
    assert_eq!(enc(json!({"a\u{1}b": "x\"\\\n"})), r#""a\u0001b": "x\"\\\n""#);
    assert_eq!(enc(json!({"a.b_c": 1})), "a.b_c: 1");
    assert_eq!(enc(json!({"1a": 1})), "\"1a\": 1");
}

#[test]
fn numbers_are_canonical() {
    let n = |f: f64| {
        let mut s = String::new();
        push_number(&mut s, &Number::from_f64(f).unwrap());
        s
    };
    assert_eq!(n(1.0), "1");
    assert_eq!(n(-0.0), "0");
    assert_eq!(n(1e-6), "0.000001");
    assert_eq!(n(1e20), "100000000000000000000");
    assert_eq!(n(1.5e21), "1.5e21");
    assert_eq!(n(2.5e-7), "2.5e-7");
    assert_eq!(TValue::from_f64(f64::NAN), TValue::Null);
}

#[test]
fn unsupported_is_reported_not_guessed() {
    let dup = TValue::Obj(vec![("a".into(), TValue::Null), ("a".into(), TValue::Null)]);
    assert!(encode_value(&dup, &EncodeOptions::default()).is_err());
    assert!(encode_json(&json!([[{"a": 1}]]), &EncodeOptions::default()).is_err());
    let zero = EncodeOptions { indent: 0, ..Default::default() };
    assert!(encode_json(&json!({"a": 1}), &zero).is_err());
    let mut deep = TValue::Null;
    for _ in 0..=MAX_DEPTH {
        deep = TValue::Arr(vec![deep]);
    }
    assert!(encode_value(&deep, &EncodeOptions::default()).is_err());
}

#[test]
fn deserialize_keeps_key_order() {
    let v: TValue = serde_json::from_str(r#"{"b":1,"a":[{"z":null,"y":true}]}"#).unwrap();
    assert_eq!(encode_value(&v, &EncodeOptions::default()).unwrap(), "b: 1\na[1]{z,y}:\n  null,true");
}

#[test]
fn triplet_graph_snapshot() {
    let g = TripletGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: BBox::new(281, 272, 524, 438) },
            Object { id: 2, name: "traffic light".into(), bbox: BBox::new(0, -3, 640, 480) },
            Object { id: 3, name: "3".into(), bbox: BBox::new(1, 2, 3, 4) },
        ],
        relations: vec![Relation { subj: 1, pred: "a,b".into(), obj: 2 }],
    };
    assert_eq!(
        encode_graph(&g.into()),
        "obj[3]{id,name,x1,y1,x2,y2}:\n  1,person,281,272,524,438\n  2,traffic light,0,-3,640,480\n  \
         3,\"3\",1,2,3,4\nrel[1]{subj,pred,obj}:\n  1,\"a,b\",2"
    );
    assert_eq!(encode_graph(&TripletGraph::default().into()), "obj: []\nrel: []");
}

#[test]
fn ag_graph_snapshot() {
    let g = AgGraph {
        objects: vec![Object { id: 1, name: "person".into(), bbox: BBox::new(24, 71, 259, 268) }],
        pairs: vec![AgPair {
            subj: 1,
            attention: vec!["unsure".into()],
            spatial: vec!["beneath".into(), "in_front_of".into()],
            contacting: vec![],
            obj: 2,
        }],
    };
    assert_eq!(
        encode_graph(&g.into()),
        "obj[1]{id,name,x1,y1,x2,y2}:\n  1,person,24,71,259,268\nrel_pairs[1]:\n  - subj: 1\n    \
         attention[1]: unsure\n    spatial[2]: beneath,in_front_of\n    contacting: []\n    obj: 2"
    );
}

#[test]
fn graph_json_value_matches_model() {
    let g = TripletGraph {
        objects: vec![Object { id: 1, name: "a".into(), bbox: BBox::new(1, 2, 3, 4) }],
        relations: vec![],
    };
    assert_eq!(
        graph_to_json_value(&g.into()),
        json!({"obj": [{"id": 1, "name": "a", "x1": 1, "y1": 2, "x2": 3, "y2": 4}], "rel": []})
    );
}
