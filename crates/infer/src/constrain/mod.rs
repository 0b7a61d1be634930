//! Constrained decoding: at each step only tokens that keep the output a prefix of a valid TOON answer may be
//! sampled, so every finished output passes the strict gate.
//!
//! The vocabulary is turned into a byte trie once ([`TokenTrie`], in [`TokenConstraint::new`]); per step, one walk
//! of the trie with the incremental validator's probe ([`sgvlm_graph::incremental::Validator::probe`]) yields every
//! allowed token, descending only into prefixes the validator accepts. Special tokens are never allowed inside the
//! answer; the end tokens become allowed once the answer is complete.

mod trie;

pub use trie::TokenTrie;

use sgvlm_graph::incremental::{ProbeStep, Validator, ValidatorConfig, Vocab as LabelVocab};
use sgvlm_graph::{Canvas, Schema, StrictConfig};

use crate::backend::Constraint;

/// The per-engine part: the trie over the vocabulary and the end-token ids.
#[derive(Debug, Clone)]
pub struct TokenConstraint {
    trie: TokenTrie,
    end_ids: Vec<u32>,
}

impl TokenConstraint {
    /// Builds the trie from the token byte strings (indexed by id); special tokens are left out.
    pub fn new(tokens: &[sgvlm_model::tokenizer::TokenBytes], end_ids: &[u32]) -> Self {
        let trie = TokenTrie::new(
            tokens.iter().enumerate().filter(|(_, t)| !t.special).map(|(i, t)| (i as u32, t.bytes.as_slice())),
        );
        Self { trie, end_ids: end_ids.to_vec() }
    }

    pub fn trie(&self) -> &TokenTrie {
        &self.trie
    }

    /// Writes into `out` (cleared first) every token id the validator allows next: tokens whose bytes it accepts,
    /// plus the end tokens once the document is complete. `token_bytes` resolves the rare "unsure" prefixes.
    pub fn allowed(&self, v: &Validator, token_bytes: &dyn Fn(u32) -> Vec<u8>, out: &mut Vec<u32>) {
        out.clear();
        if v.is_complete() {
            out.extend_from_slice(&self.end_ids);
        }
        let mut stack = vec![(self.trie.root(), v.probe())];
        let mut unsure = Vec::new();
        while let Some((node, probe)) = stack.pop() {
            for &(b, child) in self.trie.edges(node) {
                if b >= 0x80 {
                    break; // the validator accepts ASCII only; edges are sorted
                }
                match v.probe_step(&probe, b) {
                    ProbeStep::Refused => {}
                    ProbeStep::Ok(p) => {
                        out.extend_from_slice(self.trie.ends(child));
                        if !self.trie.edges(child).is_empty() {
                            stack.push((child, p));
                        }
                    }
                    ProbeStep::Unsure => {
                        unsure.clear();
                        self.trie.subtree(child, &mut unsure);
                        out.extend(unsure.iter().copied().filter(|&id| v.allows(&token_bytes(id))));
                    }
                }
            }
        }
    }
}

/// The validator configuration a request's [`Constraint`] asks for.
pub fn validator_for(c: &Constraint) -> Result<Validator, String> {
    let strict = StrictConfig { canvas: Canvas::new(c.canvas.0, c.canvas.1), ..StrictConfig::default() };
    let vocab = |list: &Option<std::sync::Arc<Vec<String>>>| {
        list.as_ref().map(|l| LabelVocab::new(l.iter().map(|s| canonical(c.schema, s))))
    };
    let cfg =
        ValidatorConfig { strict, names: vocab(&c.objects), predicates: vocab(&c.predicates), ..Default::default() };
    Validator::new(c.schema, cfg).map_err(|e| format!("constraint: {e}"))
}

/// Vocabulary entries as the answer writes them: lowercase, spaces as `-` (PSG's `traffic light` → `traffic-light`;
/// AG labels keep `_`).
fn canonical(schema: Schema, s: &str) -> String {
    let lower = s.trim().to_lowercase();
    match schema {
        Schema::Triplet => lower.split_whitespace().collect::<Vec<_>>().join("-"),
        Schema::Ag => lower.split_whitespace().collect::<Vec<_>>().join("_"),
    }
}
