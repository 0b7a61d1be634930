//! JSON forms in the oracle's key order: `{"status", "with_constraint", "no_constraint"}`, each block holding
//! `R@K, P@K, F1@K, TP@K, pred@K, GT@K, per_class_hits@K` for every K, then `per_class_gt_count`.

use super::{AgSample, ConstraintResult, KS};
use serde::ser::{Serialize, SerializeMap, Serializer};

impl Serialize for ConstraintResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(7 * KS.len() + 1))?;
        for (k, a) in KS.iter().zip(&self.at) {
            m.serialize_entry(&format!("R@{k}"), &a.recall)?;
            m.serialize_entry(&format!("P@{k}"), &a.precision)?;
            m.serialize_entry(&format!("F1@{k}"), &a.f1)?;
            m.serialize_entry(&format!("TP@{k}"), &a.tp)?;
            m.serialize_entry(&format!("pred@{k}"), &a.pred)?;
            m.serialize_entry(&format!("GT@{k}"), &a.gt)?;
            m.serialize_entry(&format!("per_class_hits@{k}"), &a.per_class_hits)?;
        }
        m.serialize_entry("per_class_gt_count", &self.per_class_gt_count)?;
        m.end()
    }
}

impl Serialize for AgSample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("status", self.status.as_str())?;
        m.serialize_entry("with_constraint", &self.with_constraint)?;
        m.serialize_entry("no_constraint", &self.no_constraint)?;
        m.end()
    }
}
