//! Per-predicate recall and precision over a file, with the strict decisions: for each predicate, how many GT
//! relations carry it and how many of those are hits of the relation assignment (recall), and how many predicted
//! relations carry it and how many of those are hits (precision).
//!
//! Recall counts the relations of every row whose ground truth parses (a failed prediction misses them all);
//! precision counts the predictions of scored rows. Rows the protocol skips (sound: unparseable ground truth)
//! count nowhere. A row whose IoU cannot be computed (NaN, paper protocol) is left out.

use super::score::{match_objects, relation_owner, strict_hits};
use super::{parse_pair, RowStatus, TripletConfig};
use crate::record::EvalRecord;
use serde::Serialize;
use sgvlm_graph::eval_parse;
use std::collections::BTreeMap;

/// Counts for one (normalised) predicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PredicateStats {
    pub predicate: String,
    /// GT relations with this predicate, and how many were matched.
    pub gt: usize,
    pub gt_matched: usize,
    /// Predicted relations with this predicate, and how many were matched.
    pub pred: usize,
    pub pred_matched: usize,
}

impl PredicateStats {
    /// `gt_matched / gt`, `None` when no GT relation carries the predicate.
    pub fn recall(&self) -> Option<f64> {
        (self.gt > 0).then(|| self.gt_matched as f64 / self.gt as f64)
    }

    /// `pred_matched / pred`, `None` when no prediction carries the predicate.
    pub fn precision(&self) -> Option<f64> {
        (self.pred > 0).then(|| self.pred_matched as f64 / self.pred as f64)
    }
}

fn entry<'a>(table: &'a mut BTreeMap<String, PredicateStats>, name: &str) -> &'a mut PredicateStats {
    table.entry(name.to_string()).or_insert_with(|| PredicateStats { predicate: name.into(), ..Default::default() })
}

/// Per-predicate counts over all records, most frequent GT predicate first (ties by name).
pub fn per_predicate(records: &[EvalRecord], cfg: &TripletConfig) -> Vec<PredicateStats> {
    let mut table: BTreeMap<String, PredicateStats> = BTreeMap::new();
    for r in records {
        match parse_pair(r.gt.as_deref(), r.pred.as_deref(), cfg) {
            Ok((g, p)) => {
                let Ok(matches) = match_objects(&g, &p, cfg) else { continue };
                let hits = strict_hits(&g, &p, &matches, cfg.protocol);
                let owner = relation_owner(&hits, g.relations.len(), p.relations.len());
                let mut gt_hit = vec![false; g.relations.len()];
                for (j, rel) in p.relations.iter().enumerate() {
                    let e = entry(&mut table, &rel.pred);
                    e.pred += 1;
                    if let Some(Some(i)) = owner.get(j) {
                        e.pred_matched += 1;
                        if let Some(h) = gt_hit.get_mut(*i) {
                            *h = true;
                        }
                    }
                }
                for (rel, hit) in g.relations.iter().zip(gt_hit) {
                    let e = entry(&mut table, &rel.pred);
                    e.gt += 1;
                    e.gt_matched += usize::from(hit);
                }
            }
            Err(RowStatus::SkipGt) => {}
            Err(_) => {
                for rel in r.gt.as_deref().and_then(eval_parse::parse).map(|g| g.relations).unwrap_or_default() {
                    entry(&mut table, &rel.pred).gt += 1;
                }
            }
        }
    }
    let mut out: Vec<PredicateStats> = table.into_values().collect();
    out.sort_by(|a, b| b.gt.cmp(&a.gt).then_with(|| a.predicate.cmp(&b.predicate)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                      3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

    #[test]
    fn counts_hits_per_predicate() {
        let pred = GT
            .replace("1,sitting-on,2", "1,on,2")
            .replace("rel[2]", "rel[3]")
            .replace("1,beside,3\n", "1,beside,3\n2,beside,3\n");
        let rec = |p: &str| EvalRecord { gt: Some(GT.into()), pred: Some(p.into()), gen_time_sec: None };
        let stats = per_predicate(&[rec(&pred), rec("no graph")], &TripletConfig::default());
        let row = |name: &str| stats.iter().find(|s| s.predicate == name).cloned().unwrap();
        assert_eq!(stats.iter().map(|s| s.predicate.as_str()).collect::<Vec<_>>(), ["beside", "sitting on", "on"]);
        assert_eq!(
            row("beside"),
            PredicateStats { predicate: "beside".into(), gt: 2, gt_matched: 1, pred: 2, pred_matched: 1 }
        );
        assert_eq!((row("sitting on").gt, row("sitting on").gt_matched, row("sitting on").pred), (2, 0, 0));
        assert_eq!((row("on").recall(), row("on").precision()), (None, Some(0.0)));
        assert_eq!(row("beside").recall(), Some(0.5));
    }
}
