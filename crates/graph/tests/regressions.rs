//! Inputs found by fuzzing or in review, each with the behaviour it pins down.

use sgvlm_graph::{answer, lenient, strict, Schema, StrictConfig};

/// Found by `fuzz/strict_triplet`: a `<think>` block that itself contains an `<answer>…</answer>` draft. The gate
/// removes the think block and validates the final answer (valid, 4 relations), but the reward's lenient parser —
/// like the reference's `_extract_answer` — reads the *first* answer block of the raw text, i.e. the draft, and
/// finds nothing. Kept for parity; parsing the gated text gives the final answer.
#[test]
fn think_block_with_draft_answer() {
    let text = include_str!("regressions/think_block_with_draft_answer.txt");
    let cfg = StrictConfig::default();
    let g = strict::parse_triplet(text, &cfg).expect("the final answer is valid");
    assert_eq!(g.relations.len(), 4);
    assert_eq!(answer::reward_answer_text(text), "draft");
    assert!(lenient::parse_completion(text, Schema::Triplet, &cfg).relations.is_empty());
    let gated = lenient::parse_completion(answer::prepare_for_strict(text), Schema::Triplet, &cfg);
    assert_eq!(gated.relations.len(), 4);
}
