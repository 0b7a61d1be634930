use super::*;

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

fn err(text: &str) -> StrictError {
    parse_triplet(text, &StrictConfig::default()).expect_err(text)
}

fn ok(text: &str) -> TripletGraph {
    parse_triplet(text, &StrictConfig::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn accepts_reference_variants() {
    let g = ok(GT);
    assert_eq!(g.objects.len(), 3);
    assert_eq!(g.relations[1], crate::types::Relation { subj: 1, pred: "beside".into(), obj: 3 });
    ok(&format!("<think>\n\n</think>\n\n{GT}<|im_end|>"));
    ok(&GT.replace("adult", "Adult").replace("OBJ", "obj").replace("obj[3]", "OBJ[3]"));
    ok(&GT.replace("\n1,", "\n  1,").replace("\nrel", "\n      rel"));
    ok(&GT.replace("1,adult,100", " 1 , adult , 100 "));
    ok(&GT.replace("\n2,chair", "\n\u{a0}2,chair"));
    ok(&GT.replace("1,adult", "01,adult"));
    ok(&GT.replace(
        "2,chair,250,300,400,480\n3,table,350,200,600,450",
        "3,table,350,200,600,450\n2,chair,250,300,400,480",
    ));
    ok(&GT.replace("1,beside,3\n</answer>", "1,beside,3\r\n</answer>"));
    ok(&GT.replace("100,100,300,400", "-0,0,640,480"));
}

#[test]
fn zero_relations_is_valid() {
    let t = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,adult,1,1,2,2\nrel[0]{subj,pred,obj}:\n</answer>";
    assert!(ok(t).relations.is_empty());
}

#[test]
fn each_malformation_has_its_error() {
    use StrictErrorKind as K;
    let cases: Vec<(String, Option<usize>, &str)> = vec![
        (GT.replace("\nrel[2]", "\n\nrel[2]"), Some(6), "blank_line"),
        (GT.replace("obj[3]", "obj[4]"), Some(2), "count_mismatch"),
        (GT.replace("rel[2]", "rel[1]"), Some(6), "count_mismatch"),
        (GT.replace("3,table", "5,table"), Some(5), "ids_not_1_to_n"),
        (GT.replace("3,table", "2,table"), Some(5), "duplicate_id"),
        (GT.replace("1,beside,3", "1,beside,1"), Some(8), "self_loop"),
        (GT.replace("1,beside,3", "1,sitting-on,2"), Some(8), "duplicate_relation"),
        (GT.replace("1,beside,3", "1,Sitting-On,2"), Some(8), "duplicate_relation"),
        (GT.replace("1,beside,3", "1,beside,7"), Some(8), "unknown_ref"),
        (GT.replace("chair", "traffic light"), Some(4), "label"),
        (GT.replace("beside", "next to"), Some(8), "label"),
        (GT.replace("400,480", "400,481"), Some(4), "box"),
        (GT.replace("300,400\n", "100,400\n"), Some(3), "box"),
        (GT.replace("250,300", "250.5,300"), Some(4), "object_row"),
        (GT.replace("1,beside,3", "1,beside"), Some(8), "relation_row"),
        (GT.replace("obj[3]{id,name", "obj[3]{id,label"), Some(2), "object_header"),
        (GT.replace("rel[2]{subj,pred,obj}:\n", ""), None, "missing_relation_header"),
        (GT.replace("1,beside,3\n", "1,beside,3\nrel[0]{subj,pred,obj}:\n"), Some(9), "multiple_relation_headers"),
        (format!("Sure! {GT}"), None, "answer_frame"),
        (format!("{GT}thanks"), None, "answer_frame"),
        (GT.replace("</answer>", ""), None, "answer_frame"),
        (GT.replace("<answer>\n", "<answer>"), None, "answer_frame"),
        ("<answer>\n\n</answer>".to_string(), Some(2), "empty_body"),
        (String::new(), None, "answer_frame"),
        ("<answer>\nobj[0]{id,name,x1,y1,x2,y2}:\nrel[0]{subj,pred,obj}:\n</answer>".into(), Some(2), "no_objects"),
    ];
    for (text, line, code) in cases {
        let e = err(&text);
        assert_eq!((e.line, e.code()), (line, code), "{e}\n{text}");
    }
    let e = err(&GT.replace("obj[3]", "obj[4]"));
    assert_eq!(e.kind, K::ObjectCountMismatch { declared: 4, actual: 3 });
}

#[test]
fn line_numbers_count_the_prefix() {
    let e = err(&format!("<think>\nhmm\n</think>\n{}", GT.replace("1,beside,3", "1,beside,1")));
    assert_eq!(e.line, Some(11));
}

#[test]
fn size_limits() {
    let mut t = String::from("<answer>\nobj[201]{id,name,x1,y1,x2,y2}:\n");
    for i in 1..=201 {
        t.push_str(&format!("{i},thing,0,0,10,10\n"));
    }
    t.push_str("rel[0]{subj,pred,obj}:\n</answer>");
    assert_eq!(err(&t).code(), "size_limit");
    let t200 = t.replace("obj[201]", "obj[200]").replace("201,thing,0,0,10,10\n", "");
    assert_eq!(ok(&t200).objects.len(), 200);
}

const AG: &str = "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n        2,table,222,143,479,244\n        \
                  3,chair,56,179,249,269\n      rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n        \
                  1,[unsure],[in_front_of],[not_contacting],2\n        1,[not_looking_at],[beneath,behind],[sitting_on,leaning_on],3\n\
                  </answer>\n";

fn ag_err(text: &str) -> StrictError {
    parse_ag(text, &StrictConfig::default()).expect_err(text)
}

#[test]
fn ag_accepts_reference_example() {
    let g = parse_ag(AG, &StrictConfig::default()).unwrap();
    assert_eq!(g.pairs.len(), 2);
    assert_eq!(g.atomic_relations().len(), 8);
    let spaced = AG.replace("[beneath,behind]", "[ Beneath , behind ]").replace("[unsure]", "[unsure,]");
    assert_eq!(parse_ag(&spaced, &StrictConfig::default()).unwrap(), g);
    assert!(is_valid(&AG.replace("[unsure]", "[]"), Schema::Ag, &StrictConfig::default()));
}

#[test]
fn ag_rules() {
    let cases = [
        (AG.replace("[unsure]", "[unsure,looking_at]"), "label_cap"),
        (AG.replace("[not_contacting]", "[a,b,c,d,e]"), "label_cap"),
        (AG.replace("[beneath,behind]", "[beneath,beneath]"), "duplicate_label"),
        (AG.replace("[unsure],[in_front_of],[not_contacting]", "[],[],[]"), "empty_pair"),
        (AG.replace("1,person", "1,man"), "subject_not_person"),
        (AG.replace("[in_front_of]", "[in front of]"), "label"),
        (AG.replace("rel_pairs[2]", "rel[2]"), "missing_relation_header"),
        (AG.replace("[unsure],[in_front_of]", "[unsure][in_front_of]"), "relation_row"),
        (AG.replace("],3\n", "],1\n"), "self_loop"),
        (
            AG.replace("rel_pairs[2]", "rel_pairs[3]").replace("],2\n", "],2\n        1,[unsure],[],[],2\n"),
            "duplicate_relation",
        ),
    ];
    for (t, code) in cases {
        assert_eq!(ag_err(&t).code(), code, "{t}");
    }
    let lax = StrictConfig { ag_enforce_person_subject: false, ..StrictConfig::default() };
    assert!(parse_ag(&AG.replace("1,person", "1,man"), &lax).is_ok());
}

#[test]
fn ag_label_table_is_the_label_byte_rule() {
    for c in 0..=255u8 {
        assert_eq!(super::fast::ag_label_byte(c), crate::label::is_label_byte(Schema::Ag, c), "byte {c}");
    }
}
