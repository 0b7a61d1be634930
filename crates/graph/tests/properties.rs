//! Property tests: encode → strict parse round trips on arbitrary valid graphs in every layout, agreement of the
//! lenient parser on valid texts, and no parser panicking on arbitrary text (UTF-8 junk, CRLF, NBSP, long lines,
//! huge numbers).

use proptest::prelude::*;
use sgvlm_graph::toon::{self, Layout};
use sgvlm_graph::{
    answer, lenient, strict, AgGraph, AgPair, BBox, Object, Relation, Schema, StrictConfig, TripletGraph,
};

const W: i64 = 640;
const H: i64 = 480;

fn label(schema: Schema) -> impl Strategy<Value = String> {
    match schema {
        Schema::Triplet => "[a-z0-9]{1,6}(-[a-z0-9]{1,5}){0,2}".boxed(),
        Schema::Ag => "[a-z0-9]([a-z0-9_./-]{0,8}[a-z0-9])?".boxed(),
    }
}

fn bbox() -> impl Strategy<Value = BBox> {
    (0..W, 0..H)
        .prop_flat_map(|(x1, y1)| (Just(x1), Just(y1), x1 + 1..=W, y1 + 1..=H))
        .prop_map(|(x1, y1, x2, y2)| BBox::new(x1, y1, x2, y2))
}

fn objects(schema: Schema, max: usize) -> impl Strategy<Value = Vec<Object>> {
    prop::collection::vec((label(schema), bbox()), 1..max).prop_map(|v| {
        v.into_iter().enumerate().map(|(i, (name, bbox))| Object { id: i as u32 + 1, name, bbox }).collect()
    })
}

prop_compose! {
    fn triplet_graph()(objs in objects(Schema::Triplet, 12))
        (rels in prop::collection::vec((1..=objs.len() as u32, label(Schema::Triplet), 1..=objs.len() as u32), 0..20),
         objs in Just(objs)) -> TripletGraph {
        let mut relations: Vec<Relation> = Vec::new();
        for (s, p, o) in rels {
            let r = Relation { subj: s, pred: p, obj: o };
            if s != o && !relations.contains(&r) {
                relations.push(r);
            }
        }
        TripletGraph { objects: objs, relations }
    }
}

fn ag_list(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label(Schema::Ag), 0..=max).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|l| seen.insert(l.clone()));
        v
    })
}

prop_compose! {
    fn ag_graph()(mut objs in objects(Schema::Ag, 10))
        (pairs in prop::collection::vec((2..=objs.len().max(2) as u32, ag_list(1), ag_list(5), ag_list(4)), 0..8),
         objs in Just({ objs[0].name = "person".into(); objs.clone() })) -> AgGraph {
        let n = objs.len() as u32;
        let mut out: Vec<AgPair> = Vec::new();
        for (o, a, s, c) in pairs {
            if o > n || a.len() + s.len() + c.len() == 0 || out.iter().any(|p| p.obj == o) {
                continue;
            }
            out.push(AgPair { subj: 1, attention: a, spatial: s, contacting: c, obj: o });
        }
        AgGraph { objects: objs, pairs: out }
    }
}

fn wrap_raw(raw: &str) -> String {
    format!("<answer>\n{raw}\n</answer>")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn triplet_round_trips_in_every_layout(g in triplet_graph()) {
        let cfg = StrictConfig::default();
        let sg = g.clone().into();
        for text in [
            toon::encode(&sg, &Layout::PAPER_TRIPLET),
            toon::encode(&sg, &Layout::SFT_INDENTED),
            wrap_raw(&toon::encode(&sg, &Layout::RAW)),
            format!("<think>\n\n</think>\n\n{}<|im_end|>", toon::encode(&sg, &Layout::PAPER_TRIPLET)),
        ] {
            let back = strict::parse_triplet(&text, &cfg);
            prop_assert_eq!(back.as_ref(), Ok(&g), "{}", text);
            let l = lenient::parse_completion(&text, Schema::Triplet, &cfg);
            if let Some(gated) = lenient::parse_gated_triplet(&text, &cfg) {
                prop_assert!(gated.is_first_answer);
                prop_assert_eq!(&gated.graph, &l);
            }
            prop_assert_eq!(l.objects.len(), g.objects.len());
            prop_assert_eq!(l.relations.len(), g.relations.len());
            prop_assert_eq!(l.meta.invalid_ref + l.meta.invalid_pred, 0);
        }
    }

    #[test]
    fn ag_round_trips_in_every_layout(g in ag_graph()) {
        let cfg = StrictConfig::default();
        let sg = g.clone().into();
        for text in [
            toon::encode(&sg, &Layout::PAPER_AG),
            toon::encode(&sg, &Layout::PAPER_TRIPLET),
            wrap_raw(&toon::encode(&sg, &Layout::RAW)),
        ] {
            let back = strict::parse_ag(&text, &cfg);
            prop_assert_eq!(back.as_ref(), Ok(&g), "{}", text);
            let l = lenient::parse_completion(&text, Schema::Ag, &cfg);
            if let Some(gated) = lenient::parse_gated_ag(&text, &cfg) {
                prop_assert!(gated.is_first_answer);
                prop_assert_eq!(&gated.graph, &l);
            }
            prop_assert_eq!(l.relations.len(), g.atomic_relations().len());
        }
    }

    #[test]
    fn body_crlf_keeps_validity(g in triplet_graph()) {
        let text = toon::encode(&g.clone().into(), &Layout::PAPER_TRIPLET);
        let body = answer::exact_answer_body(text.trim_end()).unwrap().replace('\n', "\r\n");
        let crlf = format!("<answer>\n{body}\r\n</answer>");
        prop_assert_eq!(strict::parse_triplet(&crlf, &StrictConfig::default()), Ok(g));
    }

    #[test]
    fn parsers_never_panic_on_text(s in "\\PC{0,300}") {
        exercise(&s);
    }

    #[test]
    fn parsers_never_panic_on_mutated_graphs(g in triplet_graph(), pos in any::<prop::sample::Index>(),
                                             ins in prop::sample::select(vec![
                                                 "\r\n", "\u{a0}", "\n\n", "99999999999999999999999999", "-", ",",
                                                 "[", "]", "rel[1]{subj,pred,obj}:", "obj[2]{id,name,x1,y1,x2,y2}:",
                                                 "</answer>", "<answer>", "\u{2028}", "\x1f", "é", "<|im_end|>",
                                             ])) {
        let text = toon::encode(&g.into(), &Layout::PAPER_TRIPLET);
        let mut at = pos.index(text.len() + 1);
        while !text.is_char_boundary(at) { at -= 1; }
        let mutated = format!("{}{}{}", &text[..at], ins, &text[at..]);
        exercise(&mutated);
    }

    #[test]
    fn parsers_never_panic_on_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&String::from_utf8_lossy(&b));
    }
}

fn exercise(s: &str) {
    let cfg = StrictConfig::default();
    for schema in [Schema::Triplet, Schema::Ag] {
        if let Ok(g) = strict::parse(s, schema, &cfg) {
            // Anything the gate accepts re-encodes to a text it accepts as the same graph.
            let again = toon::encode_paper(&g);
            assert_eq!(strict::parse(&again, schema, &cfg).as_ref(), Ok(&g));
        }
        let _ = lenient::parse_completion(s, schema, &cfg);
    }
    let _ = answer::reward_answer_text(s);
}

#[test]
fn long_lines_and_huge_numbers() {
    let cfg = StrictConfig::default();
    let long = format!(
        "<answer>\nobj[1]{{id,name,x1,y1,x2,y2}}:\n1,{},0,0,5,5\nrel[0]{{subj,pred,obj}}:\n</answer>",
        "a".repeat(200_000)
    );
    assert_eq!(strict::parse_triplet(&long, &cfg).unwrap().objects[0].name.len(), 200_000);
    let huge = "<answer>\nobj[99999999999999999999999]{id,name,x1,y1,x2,y2}:\n99999999999999999999,a,0,0,99999999999999999999999,5\n\
                rel[0]{subj,pred,obj}:\n</answer>";
    assert_eq!(strict::parse_triplet(huge, &cfg).unwrap_err().code(), "count_mismatch");
    let huge_box =
        "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,0,99999999999999999999999,5\nrel[0]{subj,pred,obj}:\n</answer>";
    assert_eq!(strict::parse_triplet(huge_box, &cfg).unwrap_err().code(), "box");
    let neg_huge = huge_box.replace(",0,0,", ",-99999999999999999999999,0,");
    assert_eq!(strict::parse_triplet(&neg_huge, &cfg).unwrap_err().code(), "box");
    let many_rows = format!(
        "<answer>\nobj[1]{{id,name,x1,y1,x2,y2}}:\n1,person,0,0,5,5\nrel_pairs[5000]{{subj,attention,spatial,contacting,obj}}:\n{}</answer>",
        "1,[looking_at],[],[],2\n".repeat(5000)
    );
    assert!(strict::parse_ag(&many_rows, &cfg).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The single-pass fast path and the general parser agree on valid graphs and on mutations of them.
    #[test]
    fn fast_and_general_paths_agree(g in triplet_graph(), pos in any::<prop::sample::Index>(),
                                    ins in prop::sample::select(vec![
                                        "", "\n", " ", "\t", "\r", "-", ",", "0", "9", "A", "--", "\n\n", "x,y", "\u{a0}", "1,ON,2\n", "1,on,2\n1,On,2\n",
                                        "641", "-1", "1,on,2\n", "rel[0]{subj,pred,obj}:\n",
                                    ]),
                                    del in 0usize..3) {
        let cfg = StrictConfig::default();
        let text = toon::encode(&g.into(), &Layout::PAPER_TRIPLET);
        let mut at = pos.index(text.len() + 1);
        while !text.is_char_boundary(at) { at -= 1; }
        let mut end = (at + del).min(text.len());
        while !text.is_char_boundary(end) { end += 1; }
        let mutated = format!("{}{}{}", &text[..at], ins, &text[end..]);
        let general = strict::parse_triplet_general(&mutated, &cfg);
        prop_assert_eq!(strict::is_valid(&mutated, Schema::Triplet, &cfg), general.is_ok());
        prop_assert_eq!(strict::parse_triplet(&mutated, &cfg), general);
    }
}
