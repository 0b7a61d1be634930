use super::*;

fn objs(g: &EvalGraph) -> Vec<(u64, &str, [f64; 4])> {
    g.objects.iter().map(|o| (o.id, o.name.as_str(), o.bbox)).collect()
}

fn rels(g: &EvalGraph) -> Vec<(u64, &str, u64)> {
    g.relations.iter().map(|r| (r.subj, r.pred.as_str(), r.obj)).collect()
}

const BASIC: &str = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,Traffic_Light,10,20,30,40\n\
                     2,sky-other-merged,0,0,640,100\nrel[1]{subj,pred,obj}:\n1,In-Front_of,2\n</answer>";

#[test]
fn basic_graph_is_normalised() {
    let g = parse(BASIC).unwrap();
    assert_eq!(
        objs(&g),
        vec![(1, "traffic light", [10.0, 20.0, 30.0, 40.0]), (2, "sky other merged", [0.0, 0.0, 640.0, 100.0])]
    );
    assert_eq!(rels(&g), vec![(1, "in front of", 2)]);
    assert!(sample_is_valid(BASIC, BASIC));
    assert!(!sample_is_valid("", BASIC));
    assert!(!sample_is_valid(BASIC, "<answer>\n</answer>"));
}

#[test]
fn boxes_are_reordered_and_floats_accepted() {
    let g = parse("obj[1]{id,name,x1,y1,x2,y2}:\n7,a,30,40.5,1e1,-2\nrel[0]{}:").unwrap();
    assert_eq!(objs(&g), vec![(7, "a", [10.0, -2.0, 30.0, 40.5])]);
    let g = parse("obj[2]{}:\n1,a,nan,5,3,inf\n2,b,+1,2_0, 3 ,Infinity\nrel[0]{}:").unwrap();
    let b = g.objects[0].bbox;
    assert!(b[0].is_nan() && b[1] == 5.0 && b[2] == 3.0 && b[3] == f64::INFINITY);
    assert_eq!(g.objects[1].bbox, [1.0, 20.0, 3.0, f64::INFINITY]);
    // `sorted((5, nan))` keeps the order, `sorted((nan, 5))` too.
    let g = parse("obj[1]{}:\n1,a,5,0,nan,1\nrel[0]{}:").unwrap();
    assert!(g.objects[0].bbox[0] == 5.0 && g.objects[0].bbox[2].is_nan());
}

#[test]
fn bad_object_rows_are_skipped() {
    let text = "obj[5]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3\n-1,b,1,2,3,4\nx,c,1,2,3,4\n2,d,1,2,3,4x\n\
                3,e,1,2,3,4,extra\n 04 , f ,1,2,3,4\nrel[0]{}:";
    let g = parse(text).unwrap();
    assert_eq!(objs(&g), vec![(3, "e", [1.0, 2.0, 3.0, 4.0]), (4, "f", [1.0, 2.0, 3.0, 4.0])]);
    assert_eq!(parse("obj[1]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3"), None);
    assert_eq!(parse(""), None);
    assert_eq!(parse("   \n "), None);
}

#[test]
fn csv_quoting_applies_to_rows() {
    let g = parse("obj[2]{}:\n1,\"wine, glass\",1,2,3,4\n2, \"a\"\"b\",1,2,3,4\nrel[0]{}:").unwrap();
    assert_eq!(g.objects[0].name, "wine, glass");
    assert_eq!(g.objects[1].name, "a\"b");
}

#[test]
fn header_tail_and_missing_headers() {
    // Text after the header's first colon is a row.
    let g = parse("obj[1]{id,name,x1,y1,x2,y2}: 1,a,1,2,3,4\nrel[1]{subj,pred,obj}: 1,on,1").unwrap();
    assert_eq!(objs(&g), vec![(1, "a", [1.0, 2.0, 3.0, 4.0])]);
    assert_eq!(rels(&g), vec![(1, "on", 1)]);
    // No obj header: the first row with five commas and a leading integer starts the block (and is skipped as
    // the header line); no rel header: the first later row whose comma fields 0 and 2 are digits starts the
    // relation block, which can be an object row.
    let g = parse("1,a,1,2,3,4\n2,b,5.0,6,7,8\n3,c,9,10,11,12\n1,on,2").unwrap();
    assert_eq!(objs(&g), vec![(2, "b", [5.0, 6.0, 7.0, 8.0])]);
    assert_eq!(rels(&g), vec![(1, "on", 2)]);
    assert_eq!(parse("obj[2]{}:\n1,a,1,2,3,4\n2,b,5,6,7,8"), None);
    // Header variants: spaces, case, anything between the braces.
    let g = parse("OBJ [ 1 ] {whatever} :\n1,a,1,2,3,4\nRel[1]{}:\n1,on,1").unwrap();
    assert_eq!((g.objects.len(), g.relations.len()), (1, 1));
    // A header without a colon is not a header: that line is then a row candidate and fails.
    assert_eq!(parse("obj[1]{id,name,x1,y1,x2,y2}\nfoo"), None);
}

#[test]
fn relation_rows() {
    let text = "obj[1]{}:\n1,a,1,2,3,4\nrel[5]{}:\n1,on\n1,on,x\n 2 , Sitting_On , 3 ,junk\n1,\"a,b\",2\n1,,2";
    let g = parse(text).unwrap();
    assert_eq!(rels(&g), vec![(2, "sitting on", 3), (1, "a,b", 2), (1, "", 2)]);
    // `rel[` at a line start inside the object block ends it even without a colon.
    let g = parse("obj[2]{}:\n1,a,1.0,2,3,4\nrel[x\n2,b,1.0,2,3,4\nrel[0]{}:").unwrap();
    assert_eq!(g.objects.len(), 1);
}

#[test]
fn rel_block_before_obj_block() {
    // The object block ends where the (earlier) relation block starts: nothing is left for objects.
    assert_eq!(parse("rel[1]{subj,pred,obj}:\n1,on,2\nobj[2]{}:\n1,a,1,2,3,4\n2,b,1,2,3,4"), None);
}

#[test]
fn think_stripping() {
    assert_eq!(strip_thinking("<think>\nhm\n</think>\n\n<answer>x"), "<answer>x");
    assert_eq!(strip_thinking("a</think>b</think>  c "), "c");
    assert_eq!(strip_thinking("only thoughts</think>  "), "only thoughts");
    assert_eq!(strip_thinking("</think>"), "");
    // A header line before the marker keeps everything, joined by a newline.
    assert_eq!(strip_thinking("obj[1]{id,name,x}\n1,a</think>  rest"), "obj[1]{id,name,x}\n1,a\nrest");
    assert_eq!(strip_thinking("x\n  rel[2]{subj,pred,obj}</think>"), "x\n  rel[2]{subj,pred,obj}");
    // Case-sensitive, and only at a line start.
    assert_eq!(strip_thinking("OBJ[1]{id,name</think>y"), "y");
    assert_eq!(strip_thinking("x obj[1]{id,name</think>y"), "y");
    assert_eq!(strip_thinking("<think>no close"), "<think>no close");
}

#[test]
fn answer_unwrapping() {
    assert_eq!(unwrap_answer("<answer> obj[1] a </answer>"), "obj[1] a");
    // The last block mentioning obj[n] wins over a later one that does not.
    assert_eq!(unwrap_answer("<ANSWER >obj [ 2 ]</answer><answer>hi</Answer >"), "obj [ 2 ]");
    assert_eq!(unwrap_answer("<answer>obj[1] x</answer><answer>obj[2] y</answer>"), "obj[2] y");
    // Else the last block, if non-empty.
    assert_eq!(unwrap_answer("<answer>a</answer><answer>b</answer>"), "b");
    // Else every tag becomes a space.
    assert_eq!(unwrap_answer("<answer>a</answer><answer> </answer>"), " a    ");
    assert_eq!(unwrap_answer("<answer>\nobj[1]"), " \nobj[1]");
    assert_eq!(unwrap_answer("x</ answer>"), "x</ answer>");
    assert_eq!(unwrap_answer(""), "");
    // The inner text is lazy: it ends at the first closing tag.
    assert_eq!(unwrap_answer("<answer>a<answer>obj[1]</answer>b</answer>"), "a<answer>obj[1]");
}

#[test]
fn code_fences_and_stray_tags_are_blanked() {
    let g = parse("```\n<answer>obj[1]{}:\n1,a,1,2,3,4\nrel[0]{}: </answer>\n```").unwrap();
    assert_eq!(g.objects.len(), 1);
    let g = parse("obj[1]{}:\n1,a,1,2,3,4<answer>\nrel[0]{}:").unwrap();
    assert_eq!(g.objects[0].bbox, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn huge_ids_saturate_and_odd_input_never_panics() {
    let g = parse("obj[1]{}:\n99999999999999999999999,a,1,2,3,4\nrel[0]{}:").unwrap();
    assert_eq!(g.objects[0].id, u64::MAX);
    for s in [
        "\u{a0}obj[\u{a0}1\u{a0}]\u{a0}{\u{a0}}\u{a0}:\u{a0}",
        "<answer\u{2028}>é</answer\u{a0}>",
        "</think>\u{85}obj[1]{id,name",
        "obj[1]{}:\n1,\u{e9},\u{e9},1,1,1\n",
        "<",
        "<answer",
        "}:",
    ] {
        let _ = parse(s);
    }
}

#[test]
fn flat_parse_equals_owned_parse() {
    let texts = [
        BASIC,
        "  \n<answer>\n  obj[1]{id,name,x1,y1,x2,y2}:  \n 1 , A-b ,1,2,3,4\n\n rel[1]{subj,pred,obj}:\n1,on,1\n</answer>\n",
        "<think>obj[1]{id,name</think><answer>obj[1]{}:\n1,a,1,2,3,4</answer>",
        "obj[2]{}:\n1,\"wine, glass\",1,2,3,4\n2, \"a\"\"b\",1,2,3,4\nrel[0]{}:",
        "<answer>\n</answer>",
        "<answer> </answer><answer>obj[1]{}:\n1,a,1,2,3,4</answer>",
        "```\nobj[1]{}:\n1,a,1,2,3,4\n```",
        "1,a,1,2,3,4\n2,b,5,6,7,8\n1,on,2",
        "",
        "<answer>\nno objects here\n</answer>",
        "obj[1]{}:\r\n1,caf\u{e9},1,2,3,4\u{2028}rel[1]{}:\u{85}1,x_y,1",
    ];
    let mut flat = FlatGraph::default();
    for t in texts {
        let found = parse_into(t, &mut flat);
        assert_eq!(found.then(|| flat.to_graph()), parse(t), "{t:?}");
    }
}

mod fast_path {
    use super::super::{parse, parse_general};
    use proptest::prelude::*;

    /// Pieces that stress what the shortcut must get right: tags (case, spacing, stray `<`), think markers,
    /// fences, headers anywhere, blank and space-only lines, other line breaks and non-ASCII.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "<answer>",
            "</answer>",
            "<Answer >",
            "</answer >",
            "<",
            "</think>",
            "<think>",
            "<|im_end|>",
            "```",
            "`",
            "\n",
            "\n\n",
            " ",
            "  \n",
            "\r\n",
            "\t",
            "\u{a0}",
            "\u{2028}",
            "obj[2]{id,name,x1,y1,x2,y2}:",
            "obj[1]{}:",
            "rel[1]{subj,pred,obj}:",
            "rel[0]{}:",
            "1,person,10,20,30,40",
            "2,Horse_x,0,0,5.5,1e1",
            "1,riding,2",
            "2,on,1",
            "1,a,b,c",
            "obj[3]",
            "x",
            ",",
            "\"",
            "1, \"a,b\",1,2,3,4",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
        /// The shortcut parse equals the general parse on any text built from the pieces.
        #[test]
        fn shortcut_equals_general(parts in prop::collection::vec(piece(), 0..14)) {
            let text: String = parts.concat();
            prop_assert_eq!(parse(&text), parse_general(&text), "{:?}", text);
        }

        /// The same on the common layout: one answer block around a graph, with optional surrounding space.
        #[test]
        fn shortcut_equals_general_on_answers(
            lead in "[ \n]{0,3}", rows in prop::collection::vec(piece(), 0..10), trail in "[ \n]{0,3}"
        ) {
            let text = format!("{lead}<answer>\n{}\n</answer>{trail}", rows.join("\n"));
            prop_assert_eq!(parse(&text), parse_general(&text), "{:?}", text);
        }

        /// The same with what models write around the block: a thinking part before it (with or without a TOON
        /// header line in it), special tokens or another tag after it.
        #[test]
        fn shortcut_equals_general_around_answers(
            think in prop::sample::select(vec![
                "", "<think>\n\n</think>\n\n", "<think>x</think>", "</think>", "<think>\nobj[1]{id,name\n</think>\n",
                "<answer>a</answer></think>", "<think></think></think>", "answer:\n",
            ]),
            rows in prop::collection::vec(piece(), 0..10),
            tail in prop::sample::select(vec![
                "", "<|im_end|>", "</answer>", "\n\n<answer>", " text\r\n", "</think>", "<Answer >", "\u{a0}",
            ]),
        ) {
            let text = format!("{think}<answer>\n{}\n</answer>{tail}", rows.join("\n"));
            prop_assert_eq!(parse(&text), parse_general(&text), "{:?}", text);
        }
    }
}

mod standard_layout {
    use super::super::{fast_clean, parse, parse_general, standard, EvalGraph};
    use proptest::prelude::*;

    /// Whether the single-scan parser answers for `text` (rather than handing it to the general path).
    fn standard_answers(text: &str) -> bool {
        fast_clean(text).and_then(|inner| standard::parse(inner, &mut EvalGraph::default())).is_some()
    }

    /// Both parses, compared through `Debug` (exact for floats, and NaN equals NaN there).
    fn parses(text: &str) -> (String, String) {
        (format!("{:?}", parse(text)), format!("{:?}", parse_general(text)))
    }

    #[test]
    fn oracle_texts_parse_the_same_and_mostly_take_the_scan() {
        for file in ["eval_triplet.jsonl", "eval_ag.jsonl"] {
            let (mut texts, mut scanned) = (0, 0);
            for row in sgvlm_testdata::oracle_rows(file) {
                for key in ["content", "predict"] {
                    let t = row[key].as_str().unwrap_or_default();
                    let (a, b) = parses(t);
                    assert_eq!(a, b, "{file} {key}: {t:?}");
                    texts += 1;
                    scanned += usize::from(standard_answers(t));
                }
            }
            eprintln!("{file}: {scanned} of {texts} texts took the single scan");
            // PSG/PVSG ground truths are written in the standard layout, and so are most predictions (the AG
            // texts have another header and always take the general path).
            if file == "eval_triplet.jsonl" {
                assert!(scanned * 2 > texts, "{file}: only {scanned} of {texts} texts took the single scan");
            }
        }
    }

    #[test]
    fn the_scan_answers_for_the_standard_layout_and_not_for_odd_rows() {
        let std = "obj[2]{id,name,x1,y1,x2,y2}:\n  1,person,10,20,30,40\n  2, tall Horse ,5.5,1e1,0,0\n\
                   rel[1]{subj,pred,obj}:\n  1,riding on,2\n";
        assert!(standard_answers(std));
        assert!(standard_answers(&format!("<answer>\n{std}</answer>")));
        for odd in [
            "obj[1]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3,4\n", // no relation header
            "obj[1]{id,name,x1,y1,x2,y2}:\n1,\"a,b\",1,2,3,4\nrel[0]{subj,pred,obj}:",
            "obj[1]{id,name,x1,y1,x2,y2}:\nx,a,1,2,3,4\nrel[0]{subj,pred,obj}:",
            "obj[1]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3\nrel[0]{subj,pred,obj}:",
            "obj[1]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3,zz\nrel[0]{subj,pred,obj}:",
            "obj[1]{}:\n1,a,1,2,3,4\nrel[0]{subj,pred,obj}:",
            "obj[1]{id,name,x1,y1,x2,y2}:\n1,a,1,2,3,4\nrel[1]{subj,pred,obj}:\n1,on,2,3",
        ] {
            assert!(!standard_answers(odd), "{odd:?}");
            let (a, b) = parses(odd);
            assert_eq!(a, b, "{odd:?}");
        }
    }

    fn object_row() -> impl Strategy<Value = String> {
        let num = prop_oneof!["[0-9]{1,4}", "-?[0-9]{1,3}\\.[0-9]{0,2}", Just("1e1".to_string()), Just("nan".into())];
        (" {0,2}", "[0-9]{1,3}|x|", " {0,1}[a-zA-Z_ -]{0,8}", num.clone(), num.clone(), num.clone(), num, " {0,1}")
            .prop_map(|(lead, id, name, a, b, c, d, trail)| format!("{lead}{id},{name},{a},{b},{c},{d}{trail}"))
    }

    fn relation_row() -> impl Strategy<Value = String> {
        (" {0,2}", "[0-9]{1,3}", "[a-z ]{0,8}", " {0,1}[0-9]{1,3}|q", " {0,1}")
            .prop_map(|(lead, s, p, o, trail)| format!("{lead}{s},{p},{o}{trail}"))
    }

    /// Occasional lines the scan must hand over: headers, quotes, wrong comma counts, blank lines.
    fn odd_line() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "",
            "  ",
            "rel[1]{subj,pred,obj}:",
            "obj[1]{id,name,x1,y1,x2,y2}:",
            "1,\"a,b\",1,2,3,4",
            "1,on",
            "rel[,a,1,2,3,4",
            "1,a,1,2,3,4,5",
            "1,a}:,1,2,3,4",
            "Rel[2]{}:",
        ])
        .prop_map(str::to_string)
    }

    fn line(normal: BoxedStrategy<String>) -> impl Strategy<Value = String> {
        prop_oneof![8 => normal, 1 => odd_line()]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        /// Texts in (or near) the standard layout parse the same through the scan and the general path.
        #[test]
        fn scan_equals_general(
            n in 0usize..20,
            objects in prop::collection::vec(line(object_row().boxed()), 0..6),
            with_rel in prop::bool::weighted(0.9),
            relations in prop::collection::vec(line(relation_row().boxed()), 0..6),
            wrap in any::<bool>(),
        ) {
            let mut text = format!("obj[{n}]{{id,name,x1,y1,x2,y2}}:\n{}\n", objects.join("\n"));
            if with_rel {
                text.push_str(&format!("rel[{}]{{subj,pred,obj}}:\n{}", relations.len(), relations.join("\n")));
            }
            if wrap {
                text = format!("<answer>\n{text}\n</answer>");
            }
            let (a, b) = parses(&text);
            prop_assert_eq!(a, b, "{:?}", text);
        }
    }
}
