//! What a stage's test answers score beyond the strict evaluation: the stage's result row, and object F1 on names
//! alone and on boxes alone (the demo's two failure modes: naming what the image shows, placing it).

use sgvlm_eval::strict_eval::{Summary, TripletMetrics};

/// The evaluation of one stage on the test scenes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageResult {
    pub stage: String,
    /// `free` or `constrained`.
    pub decoding: String,
    pub summary: Summary,
    /// Share of predictions failing the strict gate (the GRPO validity gate).
    pub strict_failure_rate: f64,
    /// Test scenes the engine failed on (constrained dead ends; scored as invalid).
    pub engine_errors: usize,
    /// Object F1 matching on names only (multiset), and on boxes only (IoU ≥ 0.5, any name).
    pub name_f1: f64,
    pub box_f1: f64,
    pub mean_reward: f64,
    /// The mean of each reward function over the test scenes (the hallucination penalties among them).
    pub reward_terms: serde_json::Map<String, serde_json::Value>,
    /// Distinct predictions among the test scenes: 1 means the model writes the same graph whatever the image.
    pub distinct_predictions: usize,
    #[serde(skip)]
    pub predictions: Vec<String>,
    #[serde(skip)]
    pub rows: Vec<TripletMetrics>,
}

impl StageResult {
    /// The mean of one reward function over the test scenes (NaN when absent).
    pub fn reward_term(&self, name: &str) -> f64 {
        self.reward_terms.get(name).and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
    }
}

fn f1(matched: usize, pred: usize, gt: usize) -> f64 {
    let p = if pred == 0 { 0.0 } else { matched as f64 / pred as f64 };
    let r = if gt == 0 { 0.0 } else { matched as f64 / gt as f64 };
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union =
        (a[2] - a[0]).max(0.0) * (a[3] - a[1]).max(0.0) + (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Name-only and box-only object F1 of one prediction (`None`: unparseable, scores 0).
pub fn name_box_f1(gt: &str, pred: &str) -> (f64, f64) {
    let (Some(g), Some(p)) = (sgvlm_graph::eval_parse::parse(gt), sgvlm_graph::eval_parse::parse(pred)) else {
        return (0.0, 0.0);
    };
    let mut names: Vec<&str> = g.objects.iter().map(|o| o.name.as_str()).collect();
    let mut name_hits = 0;
    for o in &p.objects {
        if let Some(i) = names.iter().position(|n| *n == o.name) {
            names.swap_remove(i);
            name_hits += 1;
        }
    }
    // Greedy one-to-one box matching, best IoU first.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, a) in p.objects.iter().enumerate() {
        for (j, b) in g.objects.iter().enumerate() {
            let v = iou(a.bbox, b.bbox);
            if v >= 0.5 {
                pairs.push((v, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_p, mut used_g) = (vec![false; p.objects.len()], vec![false; g.objects.len()]);
    let mut box_hits = 0;
    for (_, i, j) in pairs {
        if !used_p[i] && !used_g[j] {
            used_p[i] = true;
            used_g[j] = true;
            box_hits += 1;
        }
    }
    (f1(name_hits, p.objects.len(), g.objects.len()), f1(box_hits, p.objects.len(), g.objects.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_box_f1_score_names_and_boxes_separately() {
        let gt = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,100,100\n2,cup,200,200,220,240\n\
                  rel[0]{subj,pred,obj}:\n</answer>";
        // Right names, wrong boxes.
        let names = gt.replace("0,0,100,100", "300,300,400,400").replace("200,200,220,240", "500,10,520,50");
        assert_eq!(name_box_f1(gt, &names), (1.0, 0.0));
        // Right boxes, swapped names: boxes match, names still match as a multiset.
        let swapped = gt.replace("1,person", "1,tmp").replace("2,cup", "2,person").replace("1,tmp", "1,cup");
        assert_eq!(name_box_f1(gt, &swapped), (1.0, 1.0));
        // One wrong name and one box off: half of each.
        let half = gt.replace("2,cup,200,200,220,240", "2,book,300,300,320,340");
        let (n, b) = name_box_f1(gt, &half);
        assert!((n - 0.5).abs() < 1e-12 && (b - 0.5).abs() < 1e-12);
        assert_eq!(name_box_f1(gt, "garbage"), (0.0, 0.0));
    }
}
