//! The single-scan AG gate path against the general one (strict parse, then the lenient graph): on generated AG
//! answers, most of them near misses (wrong counts, ids, boxes, subjects, caps, repeated labels or pairs, odd
//! whitespace, empty list items, bad labels), the fast path either declines or returns exactly the general path's
//! graph or rejects only invalid texts, the gate's verdict is the strict parse's, and a fast graph equals the
//! lenient parse of the raw text.

use proptest::prelude::*;
use sgvlm_graph::lenient::{self, Verdict};
use sgvlm_graph::toon::{self, Layout};
use sgvlm_graph::{strict, AgGraph, AgPair, BBox, Object, Schema, StrictConfig};

const NAMES: &[&str] = &["person", "Person", "PERSON", "table", "cup", "a.b/c-d_e", "x_", "_x", "persons", "p\u{fc}"];
/// Label list items: the first 12 are valid (empty items are dropped), the rest are not.
const LABELS: &[&str] = &[
    "looking_at",
    "Looking_At",
    "on",
    "in_front_of",
    "beside",
    "holding",
    "not_contacting",
    "",
    " ",
    "\t",
    "a..b",
    "unsure",
    "ON",
    "bad label",
    "-x",
    "x-",
    "a;b",
    "\u{e9}",
];
const GOOD_LABELS: usize = 13;
const PADS: &[&str] = &["", "", "", " ", "\t", "  "];

/// One field with random padding.
fn pad(p: (usize, usize), s: &str) -> String {
    format!("{}{s}{}", PADS[p.0 % PADS.len()], PADS[p.1 % PADS.len()])
}

type ObjRow = ((usize, usize), usize, [i64; 4]);
type PairRow = (u64, Vec<usize>, Vec<usize>, Vec<usize>, u64, (usize, usize));

fn obj_row() -> impl Strategy<Value = ObjRow> {
    let coord = prop_oneof![20 => 0..30i64, 1 => -2..0i64];
    let size = prop_oneof![20 => 1..300i64, 1 => 600..660i64];
    let name = prop_oneof![12 => 0..6usize, 1 => 0..NAMES.len()];
    ((0..9usize, 0..9usize), name, [coord.clone(), coord, size.clone(), size])
}

fn label_list(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![30 => 0..GOOD_LABELS, 1 => 0..LABELS.len()], 0..=max)
}

fn pair_row() -> impl Strategy<Value = PairRow> {
    let subj = prop_oneof![12 => Just(1u64), 1 => 0..7u64];
    (subj, label_list(1), label_list(3), label_list(2), 0..6u64, (0..9usize, 0..9usize))
}

fn list(ix: &[usize], p: (usize, usize)) -> String {
    let items: Vec<String> = ix.iter().enumerate().map(|(k, &i)| pad((p.0 + k, p.1 + 2 * k), LABELS[i])).collect();
    format!("[{}]", items.join(","))
}

/// Builds an answer text; `shift` moves ids, `extra` perturbs the declared counts, `tail` picks the framing.
fn text(objs: &[ObjRow], pairs: &[PairRow], shuffle: usize, extra: (i64, i64), tail: usize, indent: bool) -> String {
    let n = objs.len();
    let (hi, ri) = if indent { ("      ", "        ") } else { ("", "") };
    let mut body = format!("{hi}obj[{}]{{id,name,x1,y1,x2,y2}}:\n", (n as i64 + extra.0).max(0));
    for (k, (p, name, b)) in objs.iter().enumerate() {
        // Ids: a rotation of 1..N; one row in 81 repeats the previous id.
        let id = if p.0 == 8 && p.1 == 8 && k > 0 { (k + shuffle - 1) % n + 1 } else { (k + shuffle) % n + 1 };
        let (x1, y1) = (b[0], b[1]);
        let (x2, y2) = (x1 + b[2] * (p.1 != 5 || p.0 != 5) as i64, y1 + b[3]);
        let name = if id == 1 && p.1 != 7 { "person" } else { NAMES[*name] };
        body += &format!(
            "{ri}{},{},{},{},{},{}\n",
            pad(*p, &id.to_string()),
            pad((p.1, p.0), name),
            x1,
            pad(*p, &y1.to_string()),
            x2,
            y2
        );
    }
    body +=
        &format!("{hi}REL_pairs[{}]{{subj,attention,spatial,contacting,obj}}:", (pairs.len() as i64 + extra.1).max(0));
    for (s, a, sp, c, o, p) in pairs {
        // Mostly an existing object other than 1 (the usual subject).
        let o = if p.0 < 8 && n > 1 { 2 + o % (n as u64 - 1) } else { *o };
        body += &format!(
            "\n{ri}{},{},{},{},{}",
            pad(*p, &s.to_string()),
            list(a, *p),
            list(sp, (p.1, p.0)),
            list(c, *p),
            pad((p.1, p.0), &o.to_string())
        );
    }
    let body = if tail % 5 == 1 { body + "\n" } else { body };
    match tail % 5 {
        0 | 1 => format!("<answer>\n{body}\n</answer>\n"),
        2 => format!("<think>\n\n</think>\n\n<answer>\n{body}\n</answer><|im_end|>"),
        3 => format!("<think><answer>\nx\n</answer></think>\n<answer>\n{body}\n</answer>"),
        _ => format!("<answer>\n{}\n</answer>", body.replace('\n', "\r\n")),
    }
}

fn check(t: &str) -> Result<bool, TestCaseError> {
    let cfg = StrictConfig::default();
    let valid = strict::parse_ag(t, &cfg).is_ok();
    let general = lenient::parse_gated_ag_general(t, &cfg);
    let fast = lenient::parse_gated_ag_fast(t, &cfg);
    if lenient::ag_scan_rejects(t, &cfg) {
        prop_assert!(!valid && fast.is_none(), "the scan rejected a valid text:\n{}", t);
    }
    if let Some(f) = &fast {
        prop_assert!(valid, "fast path accepted an invalid text:\n{}", t);
        prop_assert_eq!(Some(f), general.as_ref(), "{}", t);
        if f.is_first_answer {
            prop_assert_eq!(&f.graph, &lenient::parse_completion(t, Schema::Ag, &cfg), "{}", t);
        }
    }
    prop_assert_eq!(strict::is_valid(t, Schema::Ag, &cfg), valid, "{}", t);
    prop_assert_eq!(lenient::parse_gated_ag(t, &cfg), fast.clone().or(general.clone()), "{}", t);
    match lenient::gate(t, Schema::Ag, &cfg) {
        Verdict::Invalid => prop_assert!(!valid, "{}", t),
        Verdict::Valid => prop_assert!(valid && general.is_none(), "{}", t),
        Verdict::Gated(g) => prop_assert_eq!(Some(g), general, "{}", t),
    }
    Ok(fast.is_some())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_equals_general_path(objs in prop::collection::vec(obj_row(), 1..7),
                                     pairs in prop::collection::vec(pair_row(), 0..6),
                                     shuffle in 0..6usize, e0 in -1..=1i64, e1 in -1..=1i64,
                                     tail in 0..5usize, indent in any::<bool>()) {
        // Counts off by one in one case of five each.
        let extra = (if shuffle == 0 { e0 } else { 0 }, if shuffle == 1 { e1 } else { 0 });
        check(&text(&objs, &pairs, shuffle, extra, tail, indent))?;
    }

    /// Valid graphs in the paper's AG layout (and the triplet layout's indentation) always take the scan.
    #[test]
    fn valid_paper_texts_take_the_scan(n in 1..8usize, rows in prop::collection::vec((2..9u32, label_list(1), label_list(5)), 0..6)) {
        let objects = (1..=n as u32).map(|id| Object {
            id, name: if id == 1 { "person".into() } else { format!("o{id}") }, bbox: BBox::new(1, 2, 30, 40),
        }).collect();
        let mut pairs: Vec<AgPair> = Vec::new();
        for (o, a, s) in rows {
            let clean = |ix: &[usize], max: usize| {
                let mut v: Vec<String> = ix.iter().map(|&i| LABELS[i].to_lowercase()).filter(|l| sgvlm_graph::label::is_canonical(Schema::Ag, l)).collect();
                v.dedup();
                v.sort();
                v.dedup();
                v.truncate(max);
                v
            };
            let (attention, spatial) = (clean(&a, 1), clean(&s, 5));
            if o as usize > n || attention.is_empty() && spatial.is_empty() || pairs.iter().any(|p| p.obj == o) {
                continue;
            }
            pairs.push(AgPair { subj: 1, attention, spatial, contacting: vec![], obj: o });
        }
        let g = AgGraph { objects, pairs };
        for layout in [Layout::PAPER_AG, Layout::PAPER_TRIPLET] {
            let t = toon::encode(&g.clone().into(), &layout);
            prop_assert!(check(&t)?, "not taken by the scan:\n{}", t);
        }
    }
}

#[test]
fn near_misses_by_hand() {
    let ok = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\n2,Table,5,5,60,60\n3,cup,0,0,1,1\n\
              rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n1,[unsure],[In_front_of, beside],[],2\n\
              1 , [ ] ,[on,],[ , holding] , 3\n</answer>";
    assert!(check(ok).unwrap(), "the standard text takes the scan");
    let (mut cases, mut rejected) = (0, 0);
    for (from, to) in [
        ("[on,]", "[on,ON]"),                       // repeated label, other case
        ("[on,]", "[on,on]"),                       // repeated label
        ("[In_front_of, beside]", "[a,b,c,d,e,f]"), // over the spatial cap
        ("[unsure]", "[unsure,x]"),                 // over the attention cap
        ("1 , [ ] ,[on,],[ , holding] , 3", "1,[unsure],[In_front_of, beside],[],2"), // repeated pair row
        ("1 , [ ] ,[on,],[ , holding] , 3", "1,[],[beside],[],2"), // repeated atomic relation
        ("1 , [ ] ,[on,],[ , holding] , 3", "1,[],[],[],3"), // no label
        ("1 , [ ] ,[on,],[ , holding] , 3", "2,[],[on],[],3"), // subject not a person
        ("1 , [ ] ,[on,],[ , holding] , 3", "1,[],[on],[],1"), // self-loop
        ("1 , [ ] ,[on,],[ , holding] , 3", "1,[],[on],[],4"), // unknown id
        ("3,cup,0,0,1,1", "2,cup,0,0,1,1"),         // repeated id
        ("3,cup,0,0,1,1", "3,cup,0,0,641,1"),       // off the canvas
        ("3,cup,0,0,1,1", "3,cup,1,0,1,1"),         // empty box
        ("3,cup,0,0,1,1", "3,cup,0,0,1,1\n3,cup,0,0,1,1"), // more rows than declared
        ("rel_pairs[2]", "rel_pairs[3]"),           // relation count
        ("obj[3]", "obj[4]"),                       // object count
        ("[unsure]", "[un sure]"),                  // bad label
        ("[unsure]", "[_unsure]"),                  // bad label
        ("Table", "Ta ble"),                        // bad name
        ("\n1,person", "\n\n1,person"),             // blank line
        ("\n1,person", "\n \n1,person"),            // blank line
        ("\n1,person", "\r\n1,person"),             // CR: not decided by the scan
        ("\n</answer>", "\nrel_pairs[0]{subj,attention,spatial,contacting,obj}:\n</answer>"), // second header
    ] {
        cases += 1;
        let t = ok.replacen(from, to, 1);
        assert_ne!(t, ok, "{from}");
        let fast = check(&t).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        assert!(!fast, "{from} -> {to}: the scan accepted\n{t}");
        rejected += lenient::ag_scan_rejects(&t, &StrictConfig::default()) as usize;
    }
    // The rule breaks (the first 13 cases) are decided by the scan; the shape changes are not.
    assert_eq!((cases, rejected), (23, 13));
    // Same person subject, other case; tabs; an empty relation block; a final newline in the body.
    for (from, to) in [("1,person", "1,PERSON"), ("1 , [ ]", "1\t,\t[\t]"), ("\n</answer>", "\n\n</answer>")] {
        assert!(check(&ok.replacen(from, to, 1)).unwrap(), "{from} -> {to}");
    }
    let empty = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,3,4\nrel_pairs[0]{subj,attention,spatial,contacting,obj}:\n</answer>";
    assert!(check(empty).unwrap());
}
