use super::*;
use crate::strict;
use crate::toon::{self, Layout};
use crate::types::{AgGraph, AgPair, BBox, Object, Relation, SceneGraph, TripletGraph};

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

const OBJ1: &str = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n";

fn val(schema: Schema) -> Validator {
    val_cfg(schema, ValidatorConfig::default())
}

fn val_cfg(schema: Schema, cfg: ValidatorConfig) -> Validator {
    Validator::new(schema, cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn at(schema: Schema, prefix: &str) -> Validator {
    let mut v = val(schema);
    v.feed_str(prefix).unwrap_or_else(|e| panic!("{e} in {prefix:?}"));
    v
}

fn next(v: &Validator) -> String {
    v.allowed_next_bytes().iter().map(|b| b as char).collect()
}

/// Feeds `text` byte by byte, checking the next byte is always announced as allowed and that `allows` agrees
/// with `allowed_next_bytes` for every byte; returns the final status.
pub(super) fn walk(schema: Schema, cfg: &ValidatorConfig, text: &str) -> Result<Status, Reject> {
    let mut v = val_cfg(schema, cfg.clone());
    let mut st = Status::Incomplete;
    for &b in text.as_bytes() {
        let set = v.allowed_next_bytes();
        for c in 0..=255u8 {
            assert_eq!(set.contains(c), v.allows(&[c]), "byte {c} at {}", v.offset());
        }
        let announced = set.contains(b);
        let r = v.feed(&[b]);
        assert_eq!(announced, r.is_ok(), "byte {b} at {}", v.offset());
        st = r?;
    }
    Ok(st)
}

fn complete(schema: Schema, text: &str) {
    let cfg = ValidatorConfig::default();
    assert!(strict::is_valid(text, schema, &cfg.strict), "strict rejects {text:?}");
    assert_eq!(walk(schema, &cfg, text), Ok(Status::Complete), "{text:?}");
}

fn rejected_at(schema: Schema, text: &str) -> (u64, Why) {
    let mut v = val(schema);
    let e = v.feed_str(text).expect_err(text);
    assert!(!strict::is_valid(text, schema, &StrictConfig::default()), "{text:?}");
    (e.offset, e.why)
}

fn sample_triplet() -> TripletGraph {
    let o = |id, name: &str, b: [i64; 4]| Object { id, name: name.into(), bbox: BBox::from(b) };
    let r = |s, p: &str, o| Relation { subj: s, pred: p.into(), obj: o };
    TripletGraph {
        objects: vec![
            o(2, "person", [0, 0, 640, 480]),
            o(1, "sky-other-merged", [10, 0, 630, 100]),
            o(3, "horse", [150, 200, 600, 470]),
        ],
        relations: vec![r(2, "riding", 3), r(1, "over", 2), r(2, "riding", 1)],
    }
}

fn sample_ag() -> AgGraph {
    let o = |id, name: &str, b: [i64; 4]| Object { id, name: name.into(), bbox: BBox::from(b) };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    AgGraph {
        objects: vec![
            o(1, "person", [1, 2, 300, 479]),
            o(2, "cup/glass/bottle", [5, 5, 50, 50]),
            o(3, "table", [0, 300, 640, 480]),
        ],
        pairs: vec![
            AgPair {
                subj: 1,
                attention: s(&["looking_at"]),
                spatial: s(&["in_front_of", "beneath"]),
                contacting: s(&["holding"]),
                obj: 2,
            },
            AgPair { subj: 1, attention: vec![], spatial: s(&["behind"]), contacting: vec![], obj: 3 },
            AgPair { subj: 1, attention: s(&["unsure"]), spatial: vec![], contacting: s(&["touching"]), obj: 2 },
        ],
    }
}

#[test]
fn every_prefix_of_encoded_documents_is_viable() {
    let t: SceneGraph = sample_triplet().into();
    let a: SceneGraph = sample_ag().into();
    let odd = Layout { header_indent: 1, row_indent: 3, tags: true, trailing_newline: false };
    for lay in [Layout::PAPER_TRIPLET, Layout::PAPER_AG, Layout::SFT_INDENTED, odd] {
        complete(Schema::Triplet, &toon::encode(&t, &lay));
        complete(Schema::Ag, &toon::encode(&a, &lay));
    }
    complete(Schema::Triplet, GT);
}

#[test]
fn hand_variants_are_complete() {
    for text in [
        GT.replace("obj[3]{id,name", "OBJ[003]{ID,Name"),
        GT.replace("\n1,adult,100", "\n\t 01 , Adult\t, 100 "),
        GT.replace("100,100,300,400", "-0,-00,640,480"),
        GT.replace("1,beside,3\n</answer>\n", "1,beside,3\n\n</answer>  \t\n\n"),
        GT.replace("1,beside,3\n</answer>", "1,beside,3\r\n</answer>"),
        GT.replace("1,beside,3\n</answer>", "1,beside,3\r\n\n</answer>"),
        GT.replace('\n', "\r\n").replacen("<answer>\r\n", "<answer>\n", 1),
        GT.replace("1,beside,3", "1,SITTING-ON,3"),
        GT.replace("1,sitting-on,2\n1,beside,3", "1, beside ,3\n3,beside,1"),
        GT.replace("rel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3", "  Rel[0]{subj,PRED,obj}:  "),
        GT.trim_end().to_string(),
    ] {
        complete(Schema::Triplet, &text);
    }
    let ag = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n2,Cup/Glass,0,0,1,1\n1,PERSON,0,0,640,480\n\
              rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n 1 , [ ,looking_at,, ] ,[],[ ] , 2\n\
              1,[],[In_Front_Of , beneath],[looking_at],2\n</answer>";
    complete(Schema::Ag, ag);
}

#[test]
fn rejections_name_the_first_bad_byte() {
    let t = Schema::Triplet;
    assert_eq!(rejected_at(t, " <answer>"), (0, Why::Frame));
    assert_eq!(rejected_at(t, "<answer>\r\n"), (8, Why::Frame));
    assert_eq!(rejected_at(t, "<answer>\n\n"), (9, Why::Header));
    let dup = GT.replace("1,beside,3", "1,Sitting-on,2");
    let k = dup.find("1,Sitting-on,2").unwrap() + "1,Sitting-on,".len();
    assert_eq!(rejected_at(t, &dup), (k as u64, Why::ObjectRef));
    // With two objects, the predicate itself is the dead end.
    let two =
        "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,0,0,1,1\nrel[2]{subj,pred,obj}:\n1,on,2\n1,on,2";
    assert_eq!(rejected_at(t, two), (two.len() as u64 - 2, Why::DuplicateRelation));
    let k = GT.find("2,chair").unwrap() as u64;
    assert_eq!(rejected_at(t, &GT.replace("2,chair", "1,chair")), (k, Why::Id));
    let k = GT.find("450").unwrap() as u64 + 2;
    assert_eq!(rejected_at(t, &GT.replace("450", "481")), (k, Why::Coordinate));
    let blank = GT.replace("1,beside,3\n</answer>", "1,beside,3\n\n\n</answer>");
    let k = GT.find("</answer>").unwrap() as u64 + 1;
    assert_eq!(rejected_at(t, &blank), (k, Why::Frame));
    let cr = GT.replace("1,beside,3\n</answer>", "1,beside,3\n\r\n</answer>");
    assert_eq!(rejected_at(t, &cr).1, Why::Frame);
    assert_eq!(rejected_at(t, &GT.replace("table", "tablé")).1, Why::NotAscii);
    assert_eq!(rejected_at(t, &format!("{GT}x")).1, Why::AfterEnd);
    assert_eq!(rejected_at(t, &GT.replace("sitting-on", "sitting--on")).1, Why::Label);
    assert_eq!(rejected_at(t, &GT.replace("1,beside,3", "1,beside,1")).1, Why::ObjectRef);
}

#[test]
fn canvas_bounds_at_digit_level() {
    let t = Schema::Triplet;
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,63"))), "\t ,0123456789");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,64"))), "\t ,");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,0064"))), "\t ,");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,600,0,64"))), "0");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,600,0,6"))), "01234");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,600,0,"))), "\t 06");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,600,0,0"))), "06");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,"))), "\t -0123456789");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,-"))), "0");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,-0"))), "\t ,0");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,47"))), "\t ,0123456789");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,48"))), "\t ,");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,479,"))), "\t 06");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,479,6"))), "4");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,479,640,4"))), "8");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,639,479,640,480"))), "\t\n\r ");
}

#[test]
fn canonical_numbers_refuse_leading_zeros_where_the_gate_takes_them() {
    let t = Schema::Triplet;
    let canon = ValidatorConfig { canonical_numbers: true, ..ValidatorConfig::default() };
    let at_canon = |prefix: &str| {
        let mut v = val_cfg(t, canon.clone());
        v.feed_str(prefix).unwrap_or_else(|e| panic!("{e} in {prefix:?}"));
        v
    };
    // After a zero: only a separator (the default config: more digits too, as in the gate).
    assert_eq!(next(&at_canon(&format!("{OBJ1}1,person,0"))), "\t ,");
    assert_eq!(next(&at(t, &format!("{OBJ1}1,person,0"))), "\t ,0123456789");
    assert_eq!(next(&at_canon(&format!("{OBJ1}1,person,-0"))), "\t ,");
    // A zero only where zero is accepted: not as a count, an id or an x2 after x1 = 0.
    assert_eq!(next(&at_canon("<answer>\nobj[")), "123456789");
    assert_eq!(next(&at_canon(OBJ1)), "\t 1");
    assert_eq!(next(&at_canon(&format!("{OBJ1}1,person,0,0,"))), "\t 123456789");
    let mut v = val_cfg(t, canon.clone());
    let e = v.feed_str(&GT.replace("100,100,300", "100,0100,300")).unwrap_err();
    assert_eq!(e.why, Why::LeadingZero);
    // Canonical texts are accepted alike.
    assert_eq!(walk(t, &canon, GT), Ok(Status::Complete));
    assert!(strict::is_valid(&GT.replace("100,100,300", "100,0100,300"), t, &StrictConfig::default()));
}

/// Why constrained decoding asks for canonical numbers: a model that writes `0` whenever it may never finishes
/// under the gate's grammar (zeros keep every value reachable), and always finishes without leading zeros.
#[test]
fn a_walk_that_writes_zeros_whenever_allowed_finishes_only_with_canonical_numbers() {
    for canonical in [false, true] {
        let cfg = ValidatorConfig { canonical_numbers: canonical, ..ValidatorConfig::default() };
        let mut v = val_cfg(Schema::Triplet, cfg);
        v.feed_str("<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,cup,").unwrap();
        // Zero when allowed, else the smallest allowed byte that is not whitespace (digits before letters).
        for _ in 0..200 {
            if v.is_complete() {
                break;
            }
            let next = v.allowed_next_bytes();
            let b = if next.contains(b'0') {
                b'0'
            } else {
                next.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r')).expect("a continuation")
            };
            v.feed(&[b]).unwrap();
        }
        assert_eq!(v.is_complete(), canonical, "canonical numbers: {canonical}");
    }
}

#[test]
fn counts_and_ids() {
    let t = Schema::Triplet;
    let h = "<answer>\nobj[";
    assert_eq!(next(&at(t, h)), "0123456789");
    assert_eq!(next(&at(t, &format!("{h}0"))), "0123456789");
    assert_eq!(next(&at(t, &format!("{h}20"))), "0]");
    assert_eq!(next(&at(t, &format!("{h}200"))), "]");
    assert_eq!(next(&at(t, &format!("{h}3"))), "0123456789]");
    let rows = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n2,a,0,0,1,1\n";
    assert_eq!(next(&at(t, rows)), "\t 013");
    assert_eq!(next(&at(t, &format!("{rows}0"))), "013");
    assert_eq!(next(&at(t, &format!("{rows}3"))), "\t ,");
    // One object: no relation is possible (self-loops are invalid), so M must be 0.
    let one = format!("{OBJ1}1,a,0,0,1,1\nrel[");
    assert_eq!(next(&at(t, &one)), "0");
    assert_eq!(next(&at(t, &format!("{one}00"))), "0]");
    let rels = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,0,0,1,1\nrel[2]{subj,pred,obj}:\n";
    assert_eq!(next(&at(t, &format!("{rels}1,on,"))), "\t 02");
    let v = at(t, &format!("{rels}1,on,2\n"));
    assert!(v.allows(b"1,on"));
    assert!(!v.allows(b"1,on,"));
    assert!(!v.allows(b"1,ON "));
    assert!(v.allows(b"1,onx,2\n</answer>"));
    assert!(v.allows(b"2,on,1\n</answer>"));
    assert!(!v.allows(b"2,on,1\n\n\n"));
}

#[test]
fn token_checks_that_cross_a_row_boundary() {
    let rels = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,0,0,1,1\nrel[3]{subj,pred,obj}:\n";
    let v = at(Schema::Triplet, &format!("{rels}1,on,"));
    // The first row completes inside the token; the second must see it.
    assert!(!v.allows(b"2\n1,on,"));
    assert!(v.allows(b"2\n1,at,"));
    assert!(v.allows(b"2\n1,on"));
    let ag = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,1,1\n2,b,0,0,1,1\n\
              rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n1,[a],[],[],";
    let v = at(Schema::Ag, ag);
    assert!(!v.allows(b"2\n1,[a]"));
    assert!(v.allows(b"2\n1,[b]"));
    assert!(v.allows(b"2\n1,[],[a]"));
}

#[test]
fn ag_rules() {
    let g = Schema::Ag;
    let hdr = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,0,0,1,1\n2,cup,0,0,1,1\n3,Person,0,0,1,1\n\
               rel_pairs[";
    // 2 persons × 2 other objects, open vocabularies: bounded only by max_relations (400).
    assert_eq!(next(&at(g, &format!("{hdr}40"))), "0]");
    let rows = format!("{hdr}4]{{subj,attention,spatial,contacting,obj}}:\n");
    assert_eq!(next(&at(g, &rows)), "\t 013");
    assert_eq!(
        next(&at(g, &format!("{rows}1,[a"))),
        "\t ,-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ]_abcdefghijklmnopqrstuvwxyz"
    );
    // Attention cap is 1.
    assert_eq!(next(&at(g, &format!("{rows}1,[a,"))), "\t ,]");
    assert!(!at(g, &format!("{rows}1,[],[b,c,B")).allows(b"]"));
    assert!(at(g, &format!("{rows}1,[],[b,c,B")).allows(b"x]"));
    assert!(!at(g, &format!("{rows}1,[],[],")).allows(b"[]"));
    assert!(at(g, &format!("{rows}1,[],[],")).allows(b"[ , x]"));
    assert!(!at(g, &format!("{rows}1,[],[],[x],")).allows(b"1"));
    assert!(!at(g, &format!("{rows}1,[],[],[x]")).allows(b",4"));
    let v = at(g, &format!("{rows}1,[a],[b],[],2\n"));
    assert!(!v.allows(b"1,[],[b],[],2"));
    assert!(v.allows(b"1,[],[b],[],3"));
    assert!(v.allows(b"1,[b],[],[],2"));
    // No person at all: no rows possible.
    let nop = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,persons,0,0,1,1\n2,cup,0,0,1,1\nrel_pairs[";
    assert_eq!(next(&at(g, nop)), "0");
}

#[test]
fn relation_budget() {
    let mut cfg = ValidatorConfig::default();
    cfg.strict.max_relations = 3;
    let hdr = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,1,1\n2,cup,0,0,1,1\n\
               rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n";
    let mut v = val_cfg(Schema::Ag, cfg.clone());
    assert!(v.feed_str(&format!("{hdr}1,[a],[b")).is_ok());
    // A third label now would leave no room for the second row's label.
    assert!(!v.allows(b",c"));
    assert!(v.allows(b"],[],2\n1,[c],[],[],2\n</answer>"));
    let mut v = val_cfg(Schema::Ag, cfg);
    assert_eq!(
        v.feed_str("<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,1,1\n2,cup,0,0,1,1\nrel_pairs[").map(|_| ()),
        Ok(())
    );
    assert_eq!(next(&v), "0123");
}

#[test]
fn vocabularies() {
    let cfg = ValidatorConfig {
        names: Some(Vocab::new(["person", "horse", "sky", "sky-other-merged"])),
        predicates: Some(Vocab::new(["on", "over"])),
        ..ValidatorConfig::default()
    };
    let mut v = val_cfg(Schema::Triplet, cfg.clone());
    v.feed_str("<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,").unwrap();
    assert_eq!(next(&v), "\t hps");
    v.feed_str("sky").unwrap();
    assert_eq!(next(&v), "\t ,-");
    assert!(!v.allows(b"-o,"));
    assert!(v.allows(b"-other-merged ,"));
    v.feed_str(",0,0,1,1\n2,horse,0,0,1,1\nrel[").unwrap();
    // 2 objects × 1 other × 2 predicates.
    assert_eq!(next(&v), "01234");
    v.feed_str("2]{subj,pred,obj}:\n1,o").unwrap();
    assert_eq!(next(&v), "nv");
    assert!(!v.allows(b"N"));
    let bad = ValidatorConfig { names: Some(Vocab::new(["Person"])), ..ValidatorConfig::default() };
    assert_eq!(Validator::new(Schema::Triplet, bad).err(), Some(ConfigError::NonCanonicalEntry("Person".into())));
    let ag = ValidatorConfig {
        ag_labels: [Some(Vocab::new(["looking_at"])), Some(Vocab::new([] as [&str; 0])), None],
        ..ValidatorConfig::default()
    };
    let mut v = val_cfg(Schema::Ag, ag);
    v.feed_str("<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,1,1\n2,cup,0,0,1,1\nrel_pairs[1]{subj,attention,spatial,contacting,obj}:\n1,[")
        .unwrap();
    assert_eq!(next(&v), "\t ,]l");
    v.feed_str("],[").unwrap();
    assert_eq!(next(&v), "\t ,]");
}

#[test]
fn config_limits() {
    let mut cfg = ValidatorConfig::default();
    cfg.strict.max_objects = 256;
    assert_eq!(Validator::new(Schema::Triplet, cfg.clone()).err(), Some(ConfigError::TooManyObjects(256)));
    cfg.strict.max_objects = 10;
    cfg.strict.ag_spatial_max = 9;
    assert!(Validator::new(Schema::Triplet, cfg.clone()).is_ok());
    assert_eq!(Validator::new(Schema::Ag, cfg).err(), Some(ConfigError::CapTooLarge(RelKind::Spatial, 9)));
}

#[test]
fn reject_keeps_state_and_reset_clears() {
    let mut v = val(Schema::Triplet);
    let e = v.feed_str("<answer>\nobj[x").unwrap_err();
    assert_eq!((e.offset, e.byte, e.why), (13, b'x', Why::Header));
    assert_eq!(v.offset(), 13);
    assert_eq!(v.feed_str("1]{id,name,x1,y1,x2,y2}:\n"), Ok(Status::Incomplete));
    v.reset();
    assert_eq!(v.feed_str(GT), Ok(Status::Complete));
    assert!(v.is_complete());
    assert!(v.allows(b" \n\t"));
    assert!(!v.allows(b" x"));
    assert!(validate(GT, Schema::Triplet, ValidatorConfig::default()) == Ok(true));
}

/// With a closed predicate list a subject can run out of (predicate, object) pairs, and a predicate prefix can
/// lead only to used predicates: both must be refused where they start, or the answer has no continuation.
#[test]
fn closed_predicates_refuse_exhausted_subjects_and_prefixes() {
    let cfg = ValidatorConfig { predicates: Some(Vocab::new(["on", "over", "in"])), ..ValidatorConfig::default() };
    let objs = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,a,0,0,1,1\n2,b,0,0,1,1\n3,c,0,0,1,1\n";
    let mut v = val_cfg(Schema::Triplet, cfg.clone());
    v.feed_str(&format!("{objs}rel[8]{{subj,pred,obj}}:\n1,on,2\n1,on,3\n1,over,2\n1,over,3\n1,in,2\n")).unwrap();
    // Subject 1 has one pair left (in, 3); `o` leads only to used predicates.
    v.feed_str("1,").unwrap();
    assert_eq!(next(&v), "\t i");
    assert!(!v.allows(b"o"));
    assert!(v.allows(b"in,3\n"));
    assert!(!v.allows(b"in,2"));
    v.feed_str("in,3\n").unwrap();
    // Now every pair of subject 1 is used: it cannot start a row, neither by a byte nor inside a longer token.
    assert_eq!(next(&v), "\t 023");
    assert!(!v.allows(b"1"));
    let mut w = val_cfg(Schema::Triplet, cfg);
    w.feed_str(&format!("{objs}rel[8]{{subj,pred,obj}}:\n1,on,2\n1,on,3\n1,over,2\n1,over,3\n1,in,2\n1,in,")).unwrap();
    assert!(!w.allows(b"3\n1"));
    assert!(w.allows(b"3\n2"));
}
