//! Properties over mangled inputs: no panic, figures within [0, 1], counts consistent. Exact values live in the
//! unit tests and the oracle parity tests.

use proptest::prelude::*;
use sgvlm_eval::ag_sgdet::{self, AgConfig};
use sgvlm_eval::rewards::{self, Prepared, RewardConfig};
use sgvlm_eval::strict_eval::{self, RowStatus, TripletConfig};
use sgvlm_eval::Protocol;
use sgvlm_graph::{lenient, Schema};

const TRIPLET: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                       3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";
const AG: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,24,71,259,268\n2,table,222,143,479,244\n\
                  3,chair,56,179,249,269\nrel_pairs[2]{subj,attention,spatial,contacting,obj}:\n\
                  1,[unsure],[in_front_of],[not_contacting],2\n1,[not_looking_at],[beneath,behind],[sitting_on],3\n</answer>\n";

/// Applies edits (position, replacement) to a text, on char boundaries.
fn mangle(base: &str, edits: &[(usize, String)]) -> String {
    let mut s = base.to_string();
    for (pos, rep) in edits {
        let mut p = pos % (s.len() + 1);
        while !s.is_char_boundary(p) {
            p -= 1;
        }
        let end = (p + rep.chars().count().min(3)).min(s.len());
        let end = (end..=s.len()).find(|&e| s.is_char_boundary(e)).unwrap_or(s.len());
        s.replace_range(p..end, rep);
    }
    s
}

fn edits() -> impl Strategy<Value = Vec<(usize, String)>> {
    prop::collection::vec((any::<usize>(), "[0-9,\\[\\]a-z_ \n.\\-]{0,6}|nan|inf|1e9|\u{b2}|\u{661}"), 0..6)
}

fn unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

proptest! {
    /// The per-row verdicts count what the rewards count (rows with unique ids).
    #[test]
    fn row_verdicts_agree_with_the_reward_counts(gt in edits(), pred in edits()) {
        let cfg = RewardConfig::default();
        let (g, p) = (mangle(TRIPLET, &gt), mangle(TRIPLET, &pred));
        let solution = Prepared::new(lenient::parse_solution(&g, Schema::Triplet, &cfg.gate), Schema::Triplet);
        let graph = lenient::parse_completion(&p, Schema::Triplet, &cfg.gate);
        let mut ids: Vec<i64> = graph.objects.iter().map(|o| o.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let unique = ids.len() == graph.objects.len();
        let completion = Prepared::new(graph, Schema::Triplet);
        let v = rewards::row_verdicts(&solution, &completion, &cfg);
        let st = rewards::pair_stats(&solution, &completion, &cfg);
        prop_assert_eq!(v.relations.iter().filter(|&&m| m).count(), st.edges_matched);
        if unique {
            prop_assert_eq!(v.objects.iter().filter(|&&m| m).count(), st.good_objects);
        }
    }

    #[test]
    fn strict_eval_stays_in_range(gt in edits(), pred in edits(), sound in any::<bool>()) {
        let protocol = if sound { Protocol::Sound } else { Protocol::Paper };
        let cfg = TripletConfig { protocol, ..TripletConfig::default() };
        let (g, p) = (mangle(TRIPLET, &gt), mangle(TRIPLET, &pred));
        // A NaN IoU is the only error, and only in the paper protocol.
        if let Ok(m) = strict_eval::evaluate(Some(&g), Some(&p), &cfg) {
            for x in [m.strict_precision_objects, m.strict_recall_objects, m.strict_f1_objects,
                      m.strict_precision_relations, m.strict_recall_relations, m.strict_f1_relations,
                      m.strict_sgg_score] {
                prop_assert!(unit(x), "{x} out of range");
            }
            prop_assert_eq!(m.toon_valid, m.status == RowStatus::Scored);
            if let (Some(tp), Some(n)) = (m.tp_objects, m.num_objects_matched) {
                prop_assert!(tp <= n && n <= m.num_objects_pred.unwrap_or(0));
            }
        } else {
            prop_assert_eq!(protocol, Protocol::Paper);
        }
    }

    #[test]
    fn ag_sgdet_stays_in_range(gt in edits(), pred in edits(), sound in any::<bool>()) {
        let protocol = if sound { Protocol::Sound } else { Protocol::Paper };
        let cfg = AgConfig { protocol, ..AgConfig::default() };
        let s = ag_sgdet::evaluate(Some(&mangle(AG, &gt)), Some(&mangle(AG, &pred)), &cfg);
        prop_assert_eq!(s.with_constraint.is_some(), s.status.is_scored());
        for r in s.with_constraint.iter().chain(&s.no_constraint) {
            for a in &r.at {
                prop_assert!(unit(a.recall) && unit(a.precision) && unit(a.f1));
                prop_assert!(a.tp <= a.pred && a.pred <= 100 && a.tp <= a.gt);
            }
        }
    }
}
