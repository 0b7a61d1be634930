//! Row credit: an optional, lower-variance form of the GRPO advantage (not the paper's; off by default).
//!
//! The paper's GRPO gives every token of a completion the same advantage, the completion's total reward minus its
//! group's mean. On the synthetic demo that signal is below what a CPU step's 32 rollouts resolve
//! (`results/demo_grpo.md`, eleventh session): a completion with one right and three hallucinated relations
//! pushes all four the same way. Row credit adds to each token of an object or relation row a term saying whether
//! *that row* is right, as the rewards judge it ([`sgvlm_eval::rewards::RowVerdicts`]: an object row assigned to a
//! GT object of the same category at IoU ≥ `obj_iou_thresh`, a relation row the one-to-one edge matching takes):
//! `+1` for a right row, `−1` for a wrong one, minus the mean of those values over the group's rows of the same
//! kind. The token's advantage becomes `A + w·term` ([`crate::grpo::GrpoOptions::row_credit`] = `w`).
//!
//! The group mean is a baseline: a row's tokens are sampled given the text before them, so subtracting a constant
//! from their credit changes the variance of the gradient, not its expectation. What the term rewards is what the
//! precision rewards and the hallucination penalties measure, one row at a time; the row count (the `[N]` of each
//! header) keeps only the sequence-level advantage.
//!
//! A completion that fails the strict gate *at a row* (a relation to an object the answer never listed, a
//! self-loop, a duplicate relation, a malformed row: the gate names its line) gets `−1` on that row's tokens, as a
//! wrong row of its kind, and no other row term: what made it score 0 is that row, which the sequence advantage
//! alone spreads over every token. Such completions come only from free decoding (the demo's
//! [`crate::grpo::GrpoOptions::free_rollouts`]); a constrained one cannot write the row.
//!
//! A completion gets no row terms (only `A`) when it fails the gate anywhere else (no answer frame, a count that
//! does not match its rows), when the schema is Action Genome (a pair row stands for several atomic relations),
//! when its rows cannot be found in the text as the parse counted them, or when its tokens do not decode piecewise
//! to its text; [`RowTerms::credited`] counts the others.

use std::ops::Range;

use sgvlm_eval::rewards::{row_verdicts_of, Prepared, RewardConfig, RowVerdicts};
use sgvlm_graph::{lenient, pytext, strict, Schema};

/// Byte ranges of a completion's rows, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowSpans {
    pub objects: Vec<Range<usize>>,
    pub relations: Vec<Range<usize>>,
}

/// A row that gets credit: its tokens (indices into the completion), whether it is an object row, and `±1`.
struct CreditedRow {
    tokens: Vec<usize>,
    object: bool,
    value: f64,
}

/// The rows of a completion: the non-empty lines (without their indentation) under the `obj[N]{…}:` and
/// `rel[M]{…}:` headers of the first `<answer>` after any think block, up to `</answer>`. `None` without an answer.
pub fn row_spans(text: &str) -> Option<RowSpans> {
    let from = text.rfind("</think>").map_or(0, |p| p + "</think>".len());
    let start = from + text[from..].find("<answer>")? + "<answer>".len();
    let (mut objects, mut relations) = (Vec::new(), Vec::new());
    let mut block: Option<bool> = None; // Some(true): object rows; Some(false): relation rows.
    let mut at = start;
    for line in text[start..].split_inclusive('\n') {
        let begin = at;
        at += line.len();
        let body = line.trim_end();
        let trimmed = body.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("</answer>") {
            break;
        }
        if lower.starts_with("obj[") {
            block = Some(true);
        } else if lower.starts_with("rel[") {
            block = Some(false);
        } else if let Some(is_object) = block {
            let row = begin + (body.len() - trimmed.len())..begin + body.len();
            if is_object {
                objects.push(row)
            } else {
                relations.push(row)
            }
        }
    }
    Some(RowSpans { objects, relations })
}

/// The byte offset at which each token's text ends in `text`, when decoding the tokens one by one and joining
/// the pieces gives `text` exactly (`None` otherwise, e.g. a multi-byte character split across tokens).
pub fn token_ends(ids: &[u32], text: &str, decode: &dyn Fn(&[u32]) -> String) -> Option<Vec<usize>> {
    let mut ends = Vec::with_capacity(ids.len());
    let mut at = 0usize;
    for &t in ids {
        let piece = decode(&[t]);
        if !text[at..].starts_with(piece.as_str()) {
            return None;
        }
        at += piece.len();
        ends.push(at);
    }
    (at == text.len()).then_some(ends)
}

/// The tokens (by [`token_ends`]) whose text overlaps the byte range `r`: token `k` covers bytes
/// `[ends[k−1], ends[k])`; empty tokens (stripped specials) cover nothing.
pub fn tokens_in(ends: &[usize], r: &Range<usize>) -> Vec<usize> {
    (0..ends.len())
        .filter(|&k| {
            let begin = if k == 0 { 0 } else { ends[k - 1] };
            begin < ends[k] && begin < r.end && r.start < ends[k]
        })
        .collect()
}

/// The per-token row terms of a step's completions ([`row_terms`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowTerms {
    /// `terms[i][k]`: the term of completion `i`'s token `k` (0 outside rows and for completions without credit).
    pub terms: Vec<Vec<f64>>,
    /// Completions whose rows got credit.
    pub credited: usize,
}

/// Row terms for completions (`ids[i]`, decoded to `texts[i]`) in groups of `group` consecutive completions of the
/// same prompt; `solutions[i]` is completion `i`'s reference answer.
pub fn row_terms(
    ids: &[Vec<u32>],
    texts: &[String],
    solutions: &[&str],
    group: usize,
    schema: Schema,
    cfg: &RewardConfig,
    decode: &dyn Fn(&[u32]) -> String,
) -> RowTerms {
    let mut out = RowTerms { terms: ids.iter().map(|c| vec![0.0; c.len()]).collect(), credited: 0 };
    let group = group.max(1);
    for first in (0..ids.len()).step_by(group) {
        let members = first..(first + group).min(ids.len());
        let solution = Prepared::new(lenient::parse_solution(solutions[first], schema, &cfg.gate), schema);
        let rows: Vec<Option<Vec<CreditedRow>>> = members
            .clone()
            .map(|i| {
                if schema != Schema::Triplet {
                    return None;
                }
                match row_verdicts_of(&texts[i], &solution, schema, cfg) {
                    Some(verdicts) => credited_rows(&ids[i], &texts[i], &verdicts, decode),
                    None => rejected_row(&ids[i], &texts[i], cfg, decode),
                }
            })
            .collect();
        let mean = |object: bool| {
            let vals: Vec<f64> =
                rows.iter().flatten().flatten().filter(|r| r.object == object).map(|r| r.value).collect();
            if vals.is_empty() {
                0.0
            } else {
                vals.iter().sum::<f64>() / vals.len() as f64
            }
        };
        let (object_mean, relation_mean) = (mean(true), mean(false));
        for (i, completion_rows) in members.zip(&rows) {
            let Some(completion_rows) = completion_rows else { continue };
            out.credited += 1;
            // A token that straddles two rows (a merged newline) takes the mean of their terms.
            let mut count = vec![0u32; ids[i].len()];
            for row in completion_rows {
                let term = row.value - if row.object { object_mean } else { relation_mean };
                for &k in &row.tokens {
                    out.terms[i][k] += term;
                    count[k] += 1;
                }
            }
            for (t, n) in out.terms[i].iter_mut().zip(count) {
                if n > 1 {
                    *t /= n as f64;
                }
            }
        }
    }
    out
}

/// One completion's rows with their tokens and values, when its rows and tokens line up with its parse.
fn credited_rows(
    ids: &[u32],
    text: &str,
    verdicts: &RowVerdicts,
    decode: &dyn Fn(&[u32]) -> String,
) -> Option<Vec<CreditedRow>> {
    let RowSpans { objects, relations } = row_spans(text)?;
    if objects.len() != verdicts.objects.len() || relations.len() != verdicts.relations.len() {
        return None;
    }
    let ends = token_ends(ids, text, decode)?;
    let row = |r: &Range<usize>, object: bool, right: bool| CreditedRow {
        tokens: tokens_in(&ends, r),
        object,
        value: if right { 1.0 } else { -1.0 },
    };
    let rows = objects
        .iter()
        .zip(&verdicts.objects)
        .map(|(r, &ok)| row(r, true, ok))
        .chain(relations.iter().zip(&verdicts.relations).map(|(r, &ok)| row(r, false, ok)))
        .collect();
    Some(rows)
}

/// The row at which a triplet completion fails the strict gate, as a wrong row (module doc); `None` when it fails
/// elsewhere. The gate's line numbers count lines as `str.splitlines()` does ([`pytext::splitlines`]).
fn rejected_row(
    ids: &[u32],
    text: &str,
    cfg: &RewardConfig,
    decode: &dyn Fn(&[u32]) -> String,
) -> Option<Vec<CreditedRow>> {
    let line = strict::parse_triplet(text, &cfg.gate).err()?.line?;
    let (begin, body) = pytext::splitlines(text).nth(line.checked_sub(1)?)?;
    let end = begin + body.len();
    let RowSpans { objects, relations } = row_spans(text)?;
    let at_line = |r: &&Range<usize>| r.start >= begin && r.end <= end;
    let object = match (objects.iter().find(at_line), relations.iter().find(at_line)) {
        (Some(_), _) => true,
        (None, Some(_)) => false,
        (None, None) => return None,
    };
    let ends = token_ends(ids, text, decode)?;
    Some(vec![CreditedRow { tokens: tokens_in(&ends, &(begin..end)), object, value: -1.0 }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,100,100,300,400\n2,ball,250,300,400,480\n\
                      3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,holding,2\n1,beside,3\n</answer>";
    /// Object 2's box is far off (a wrong row), relation `1,beside,3` is right, `3,on,1` is not in the solution.
    const PRED: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,100,100,300,400\n2,ball,0,0,20,20\n\
                        3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,beside,3\n3,on,1\n</answer>";

    /// One token per byte: every byte of the text is its own piece.
    fn bytes(text: &str) -> (Vec<u32>, impl Fn(&[u32]) -> String) {
        (text.bytes().map(u32::from).collect(), |ids: &[u32]| ids.iter().map(|&b| b as u8 as char).collect())
    }

    #[test]
    fn spans_are_the_rows_under_each_header() {
        let spans = row_spans(PRED).unwrap();
        let texts: Vec<&str> = spans.objects.iter().chain(&spans.relations).map(|r| &PRED[r.clone()]).collect();
        assert_eq!(
            texts,
            ["1,person,100,100,300,400", "2,ball,0,0,20,20", "3,table,350,200,600,450", "1,beside,3", "3,on,1"]
        );
        let thought = format!("<think>\nobj[1]{{x}}:\n9,fake\n</think>\n\n  {}", PRED.replace("\n3,on", "\n   3,on"));
        let spans = row_spans(&thought).unwrap();
        assert_eq!((spans.objects.len(), &thought[spans.relations[1].clone()]), (3, "3,on,1"));
        assert_eq!(row_spans("no answer here"), None);
    }

    /// Row terms of one group of completions (one token per byte) against [`GT`].
    fn group_terms(texts: &[&str]) -> RowTerms {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| bytes(t).0).collect();
        let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let decode = bytes("").1;
        let solutions = vec![GT; texts.len()];
        row_terms(&ids, &owned, &solutions, texts.len(), Schema::Triplet, &RewardConfig::default(), &decode)
    }

    #[test]
    fn a_row_the_gate_rejects_is_a_wrong_row_of_its_kind() {
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        // A relation to an object the answer never listed: relations −1 (rejected), PRED's +1 and −1, mean −1/3.
        let unknown = PRED.replace("3,on,1", "3,on,4");
        let t = group_terms(&[&unknown, PRED]);
        assert_eq!(t.credited, 2);
        let row = unknown.find("3,on,4").unwrap();
        for k in row..row + "3,on,4".len() {
            assert!(close(t.terms[0][k], -1.0 + 1.0 / 3.0), "byte {k}: {}", t.terms[0][k]);
        }
        let rejected: f64 = t.terms[0].iter().map(|x| x.abs()).sum();
        assert!(close(rejected, 6.0 * (2.0 / 3.0)), "only the rejected row has terms: {rejected}");
        assert!(close(t.terms[1][PRED.find("3,on,1").unwrap()], -1.0 + 1.0 / 3.0));
        // A self-loop is a wrong relation row, a malformed object row a wrong object row, each against the group's
        // rows of its kind: with GT's, relations (−1, +1, +1) have mean 1/3, objects (−1, +1, +1, +1) 1/2.
        for (from, to, term) in [("3,on,1", "3,on,3", -4.0 / 3.0), ("2,ball,0,0,20,20", "2,ball,0,0,20", -1.5)] {
            let bad = PRED.replace(from, to);
            let t = group_terms(&[&bad, GT]);
            assert_eq!(t.credited, 2, "{to}");
            let k = bad.find(to).unwrap();
            assert!(close(t.terms[0][k], term), "{to}: {}", t.terms[0][k]);
        }
        // A count that does not match the rows is no row's fault.
        assert_eq!(group_terms(&[&PRED.replace("rel[2]", "rel[3]")]).credited, 0);
    }

    #[test]
    fn token_ends_need_pieces_that_rebuild_the_text() {
        let (ids, decode) = bytes("ab\nc");
        assert_eq!(token_ends(&ids, "ab\nc", &decode), Some(vec![1, 2, 3, 4]));
        assert_eq!(token_ends(&ids, "ab\nd", &decode), None);
        assert_eq!(token_ends(&ids[..3], "ab\nc", &decode), None);
    }

    #[test]
    fn right_rows_are_pushed_up_and_wrong_rows_down_against_the_group_mean() {
        let t = group_terms(&[PRED, GT]);
        assert_eq!(t.credited, 2);
        // Objects: 5 of 6 rows right (mean 4/6); relations: 3 of 4 right (mean 0.5).
        let term_at = |i: usize, text: &str, needle: &str| {
            let k = text.find(needle).unwrap();
            t.terms[i][k]
        };
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(term_at(0, PRED, "2,ball,0"), -1.0 - 4.0 / 6.0));
        assert!(close(term_at(0, PRED, "1,person"), 1.0 - 4.0 / 6.0));
        assert!(close(term_at(0, PRED, "1,beside"), 0.5));
        assert!(close(term_at(0, PRED, "3,on,1"), -1.5));
        assert!(close(term_at(1, GT, "1,holding"), 0.5));
        // Headers, tags and newlines between rows carry no term.
        for needle in ["<answer>", "obj[3]", "rel[2]", "</answer>"] {
            assert_eq!(term_at(0, PRED, needle), 0.0, "{needle}");
        }
        // A completion that fails the gate elsewhere than at a row gets none, and the group mean is over the
        // others only.
        let t = group_terms(&[&PRED.replace("\nrel[2]", "\n\nrel[2]"), PRED]);
        assert_eq!(t.credited, 1);
        assert!(t.terms[0].iter().all(|&x| x == 0.0));
        assert!(close(t.terms[1][PRED.find("3,on,1").unwrap()], -1.0));
        // Action Genome rows get no credit.
        let (ids, decode) = bytes(GT);
        let t = row_terms(&[ids], &[GT.to_string()], &[GT], 1, Schema::Ag, &RewardConfig::default(), &decode);
        assert_eq!(t.credited, 0);
    }
}
