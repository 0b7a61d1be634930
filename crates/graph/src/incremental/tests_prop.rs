//! Property tests: encoded random graphs are accepted whatever the chunking; on mutated documents inside the
//! accepted language the validator and the strict gate agree; token checks agree with feeding.

use super::tests::walk;
use super::*;
use crate::strict;
use crate::toon::{self, Layout};
use crate::types::{AgGraph, AgPair, BBox, Object, Relation, SceneGraph, TripletGraph};
use proptest::prelude::*;
use std::collections::HashSet;

const NAMES: &[&str] = &["person", "Person", "horse", "sky-other-merged", "a1", "cup"];
const PREDS: &[&str] = &["on", "On", "riding", "in-front-of", "beside"];
const AG_LABELS: &[&str] = &["looking_at", "unsure", "in_front_of", "behind", "holding", "cup/glass", "a.b"];

fn bbox() -> impl Strategy<Value = BBox> {
    (0i64..640, 1i64..=640, 0i64..480, 1i64..=480)
        .prop_map(|(x, w, y, h)| BBox::new(x, y, (x + w).min(640), (y + h).min(480)))
}

fn objects() -> impl Strategy<Value = Vec<Object>> {
    (1usize..6).prop_flat_map(|n| {
        (
            prop::collection::vec((prop::sample::select(NAMES), bbox()), n),
            Just((1..=n as u32).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(v, ids)| {
                v.into_iter().zip(ids).map(|((name, bbox), id)| Object { id, name: name.to_string(), bbox }).collect()
            })
    })
}

fn triplet() -> impl Strategy<Value = TripletGraph> {
    (objects(), prop::collection::vec((1u32..6, prop::sample::select(PREDS), 1u32..6), 0..8)).prop_map(
        |(objects, raw)| {
            let n = objects.len() as u32;
            let mut keys = HashSet::new();
            let relations = raw
                .into_iter()
                .filter(|&(s, p, o)| s <= n && o <= n && s != o && keys.insert((s, p.to_lowercase(), o)))
                .map(|(subj, p, obj)| Relation { subj, pred: p.to_string(), obj })
                .collect();
            TripletGraph { objects, relations }
        },
    )
}

fn ag() -> impl Strategy<Value = AgGraph> {
    let list = |max| prop::collection::vec(prop::sample::select(AG_LABELS), 0..=max);
    (objects(), prop::collection::vec((1u32..6, list(1), list(3), list(2), 1u32..6), 0..6)).prop_map(
        |(mut objects, raw)| {
            objects[0].name = "person".into();
            let n = objects.len() as u32;
            let person = |id: u32| objects.iter().any(|o| o.id == id && o.name.eq_ignore_ascii_case("person"));
            let mut used = HashSet::new();
            let mut pairs = Vec::new();
            for (s, a, sp, c, o) in raw {
                if s > n || o > n || s == o || !person(s) {
                    continue;
                }
                let mut lists: [Vec<String>; 3] = Default::default();
                for (k, l) in [a, sp, c].into_iter().enumerate() {
                    for x in l {
                        if !lists[k].iter().any(|y| y == x) && used.insert((s, k, x, o)) {
                            lists[k].push(x.to_string());
                        }
                    }
                }
                if lists.iter().all(Vec::is_empty) {
                    continue;
                }
                let [attention, spatial, contacting] = lists;
                pairs.push(AgPair { subj: s, attention, spatial, contacting, obj: o });
            }
            AgGraph { objects, pairs }
        },
    )
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::PAPER_TRIPLET),
        Just(Layout::PAPER_AG),
        (0usize..3, 0usize..9, any::<bool>()).prop_map(|(h, r, t)| Layout {
            header_indent: h,
            row_indent: r,
            tags: true,
            trailing_newline: t,
        }),
    ]
}

fn doc() -> impl Strategy<Value = (Schema, String)> {
    prop_oneof![
        (triplet(), layout()).prop_map(|(g, l)| (Schema::Triplet, toon::encode(&SceneGraph::Triplet(g), &l))),
        (ag(), layout()).prop_map(|(g, l)| (Schema::Ag, toon::encode(&SceneGraph::Ag(g), &l))),
    ]
}

/// The validator's language restrictions (see the module doc), applied to a text.
fn in_language(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with("<answer>\n")
        && b.iter().enumerate().all(|(i, &c)| {
            c.is_ascii() && !matches!(c, 0x0b | 0x0c | 0x1c..=0x1f) && (c != b'\r' || b.get(i + 1) == Some(&b'\n'))
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
}

const ALPHABET: &[u8] = b"0123456789abcenoprsxAP,[]- \n";

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(ALPHABET);
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
    ]
}

fn apply(s: &str, edits: &[Edit]) -> String {
    let mut b = s.as_bytes().to_vec();
    for e in edits {
        let len = b.len().max(1);
        match *e {
            Edit::Delete(i) if !b.is_empty() => {
                b.remove(i % len);
            }
            Edit::Insert(i, c) => b.insert(i % (b.len() + 1), c),
            Edit::Replace(i, c) if !b.is_empty() => b[i % len] = c,
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn fed(schema: Schema, chunks: &[&[u8]]) -> Result<Status, Reject> {
    let mut v = Validator::new(schema, ValidatorConfig::default()).map_err(|_| Reject {
        offset: 0,
        byte: 0,
        why: Why::Internal,
    })?;
    let mut st = Status::Incomplete;
    for c in chunks {
        assert_eq!(v.allows(c), {
            let mut w = v.clone();
            w.feed(c).is_ok()
        });
        st = v.feed(c)?;
    }
    Ok(st)
}

fn split<'a>(s: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
    at.push(0);
    at.push(s.len());
    at.sort_unstable();
    at.windows(2).map(|w| &s[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("INC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

    #[test]
    fn encoded_graphs_are_complete((schema, text) in doc(), cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let cfg = ValidatorConfig::default();
        prop_assert!(strict::is_valid(&text, schema, &cfg.strict));
        prop_assert_eq!(walk(schema, &cfg, &text), Ok(Status::Complete));
        prop_assert_eq!(fed(schema, &split(text.as_bytes(), &cuts)), Ok(Status::Complete));
    }

    #[test]
    fn mutations_agree_with_the_strict_gate(
        (schema, text) in doc(),
        edits in prop::collection::vec(edit(), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let s = apply(&text, &edits);
        prop_assume!(in_language(&s));
        let cfg = ValidatorConfig::default();
        let strict_ok = strict::is_valid(&s, schema, &cfg.strict);
        let mut v = Validator::new(schema, cfg.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let r = v.feed_str(&s);
        prop_assert_eq!(r == Ok(Status::Complete), strict_ok, "{:?} {:?}", s, r);
        if let Err(e) = r {
            // The accepted prefix is still viable and the refused byte is announced as refused.
            prop_assert!(!v.allowed_next_bytes().contains(e.byte));
            prop_assert!(!v.allows(&s.as_bytes()[e.offset as usize..]));
        }
        // Chunked feeding (with token checks against clones) gives the same answer.
        let chunks = split(s.as_bytes(), &cuts);
        prop_assert_eq!(fed(schema, &chunks) == Ok(Status::Complete), strict_ok);
    }

    #[test]
    fn byte_masks_agree_with_token_checks(
        (schema, text) in doc(),
        edits in prop::collection::vec(edit(), 0..2),
        at in any::<usize>(),
        toks in prop::collection::vec((any::<usize>(), 1usize..12), 1..20),
    ) {
        let s = apply(&text, &edits);
        let b = s.as_bytes();
        let mut v = Validator::new(schema, ValidatorConfig::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = v.feed(&b[..at % (b.len() + 1)]);
        let set = v.allowed_next_bytes();
        for c in 0..=255u8 {
            prop_assert_eq!(set.contains(c), v.allows(&[c]));
        }
        for (start, len) in toks {
            let st = start % (b.len() + 1);
            let tok = &b[st..(st + len).min(b.len())];
            let mut w = v.clone();
            prop_assert_eq!(v.allows(tok), w.feed(tok).is_ok(), "{:?}", String::from_utf8_lossy(tok));
        }
    }
}
