use super::*;
use crate::types::BBox;

fn sample_triplet() -> TripletGraph {
    TripletGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: BBox::new(281, 272, 524, 438) },
            Object { id: 2, name: "umbrella".into(), bbox: BBox::new(273, 123, 640, 434) },
        ],
        relations: vec![Relation { subj: 1, pred: "holding".into(), obj: 2 }],
    }
}

fn sample_ag() -> AgGraph {
    AgGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: BBox::new(24, 71, 259, 268) },
            Object { id: 2, name: "table".into(), bbox: BBox::new(222, 143, 479, 244) },
            Object { id: 3, name: "chair".into(), bbox: BBox::new(56, 179, 249, 269) },
        ],
        pairs: vec![
            AgPair {
                subj: 1,
                attention: vec!["unsure".into()],
                spatial: vec!["in_front_of".into()],
                contacting: vec!["not_contacting".into()],
                obj: 2,
            },
            AgPair {
                subj: 1,
                attention: vec!["not_looking_at".into()],
                spatial: vec!["beneath".into(), "behind".into()],
                contacting: vec!["sitting_on".into(), "leaning_on".into()],
                obj: 3,
            },
        ],
    }
}

#[test]
fn paper_triplet_layout() {
    let mut s = String::new();
    write_triplet(&mut s, &sample_triplet(), &Layout::PAPER_TRIPLET);
    assert_eq!(
        s,
        "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,281,272,524,438\n2,umbrella,273,123,640,434\n\
         rel[1]{subj,pred,obj}:\n1,holding,2\n</answer>\n"
    );
}

#[test]
fn paper_ag_layout_matches_reference_example() {
    let mut s = String::new();
    write_ag(&mut s, &sample_ag(), &Layout::PAPER_AG);
    assert_eq!(
        s,
        "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n        2,table,222,143,479,244\n        \
         3,chair,56,179,249,269\n      rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n        \
         1,[unsure],[in_front_of],[not_contacting],2\n        1,[not_looking_at],[beneath,behind],[sitting_on,leaning_on],3\n\
         </answer>\n"
    );
}

#[test]
fn raw_layout_has_no_tags_and_no_trailing_newline() {
    let mut s = String::new();
    write_triplet(&mut s, &sample_triplet(), &Layout::RAW);
    assert_eq!(
        s,
        "obj[2]{id,name,x1,y1,x2,y2}:\n  1,person,281,272,524,438\n  2,umbrella,273,123,640,434\n\
         rel[1]{subj,pred,obj}:\n  1,holding,2"
    );
    let empty = TripletGraph { objects: sample_triplet().objects, relations: vec![] };
    let mut s = String::new();
    write_triplet(&mut s, &empty, &Layout::RAW);
    assert!(s.ends_with("\nrel[0]{subj,pred,obj}:"), "{s:?}");
}

#[test]
fn empty_lists_render_as_brackets() {
    let mut g = sample_ag();
    g.pairs[0].attention.clear();
    let s = encode(&g.into(), &Layout::PAPER_AG);
    assert!(s.contains("        1,[],[in_front_of],[not_contacting],2\n"));
}
