//! Constrained decoding: at each step only tokens that keep the output a prefix of a valid TOON answer may be
//! sampled, so every finished output passes the strict gate.
//!
//! The vocabulary is turned into a byte trie once ([`TokenTrie`], in [`TokenConstraint::new`]); per step, one walk
//! of the trie with the incremental validator's probe ([`sgvlm_graph::incremental::Validator::probe`]) yields every
//! allowed token, descending only into prefixes the validator accepts. Inside a label with an open vocabulary that
//! walk would visit most of the vocabulary, so the tokens made of label bytes come from a cache per lexical state
//! (`free`). The result is a [`TokenMask`] (a bitset over ids) the sampler reads directly. Special tokens are never
//! allowed inside the answer; the end tokens become allowed once the answer is complete.
//!
//! Tokens containing spaces, tabs or carriage returns are left out of the trie: the strict gate tolerates
//! whitespace around every field, but a valid answer never needs it (the training targets have none), and
//! allowing it lets a weak model pad forever instead of finishing the graph. For the same reason numbers are
//! canonical here (no leading zeros: [`ValidatorConfig::canonical_numbers`]), where the gate would take `007`.

mod free;
mod mask;
mod trie;

pub use mask::TokenMask;
pub use trie::TokenTrie;

use sgvlm_graph::incremental::{ByteSet, Probe, ProbeStep, Validator, ValidatorConfig, Vocab as LabelVocab};
use sgvlm_graph::{Canvas, Schema, StrictConfig};

use crate::backend::Constraint;

/// The per-engine part: the trie over the vocabulary, the end-token ids and the open-label caches.
#[derive(Debug, Clone)]
pub struct TokenConstraint {
    trie: TokenTrie,
    end_ids: Vec<u32>,
    vocab_len: usize,
    free: free::FreeCaches,
}

/// One pending trie node of a walk: the node, the probe after its prefix, and the bytes whose edges to skip there.
type Frame = (u32, Probe, ByteSet);

impl TokenConstraint {
    /// Builds the trie from the token byte strings (indexed by id); special tokens are left out.
    pub fn new(tokens: &[sgvlm_model::tokenizer::TokenBytes], end_ids: &[u32]) -> Self {
        let trie = TokenTrie::new(
            tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.special && !t.bytes.iter().any(|b| matches!(b, b' ' | b'\t' | b'\r')))
                .map(|(i, t)| (i as u32, t.bytes.as_slice())),
        );
        let vocab_len = tokens.len().max(end_ids.iter().map(|&i| i as usize + 1).max().unwrap_or(0));
        Self { trie, end_ids: end_ids.to_vec(), vocab_len, free: Default::default() }
    }

    pub fn trie(&self) -> &TokenTrie {
        &self.trie
    }

    /// Number of token ids the masks cover.
    pub fn vocab_len(&self) -> usize {
        self.vocab_len
    }

    /// An empty mask sized for this vocabulary.
    pub fn new_mask(&self) -> TokenMask {
        TokenMask::new(self.vocab_len)
    }

    /// Writes into `out` (resized and cleared first) every token id the validator allows next: tokens whose bytes
    /// it accepts, plus the end tokens once the document is complete. `token_bytes` resolves the rare "unsure"
    /// prefixes. Inside an open-vocabulary label the tokens made of label bytes come from a per-state cache (built
    /// by the first call in that state, see `free`); elsewhere one trie walk yields the set.
    pub fn allowed(&self, v: &Validator, token_bytes: &dyn Fn(u32) -> Vec<u8>, out: &mut TokenMask) {
        if out.capacity() < self.vocab_len || out.capacity() >= self.vocab_len + 64 {
            *out = self.new_mask();
        }
        let cache = v.free_label().map(|key| (key, self.free.get(key, &self.trie, v, self.vocab_len)));
        match cache {
            Some((key, c)) if !c.uncacheable => {
                out.copy_from(&c.pure);
                let mut stack = Vec::with_capacity(c.exits.len());
                'exits: for exit in &c.exits {
                    let mut p = v.probe();
                    for &b in exit.prefix.iter() {
                        match v.probe_step(&p, b) {
                            ProbeStep::Ok(q) => p = q,
                            // The cache was built from an equal key, so its prefixes are accepted.
                            _ => continue 'exits,
                        }
                    }
                    stack.push((exit.node, p, key.class));
                }
                self.walk(v, stack, (token_bytes, out), true);
            }
            _ => {
                out.clear();
                self.walk(v, vec![(self.trie.root(), v.probe(), ByteSet::EMPTY)], (token_bytes, out), true);
            }
        }
        if v.is_complete() {
            for &id in &self.end_ids {
                out.insert(id);
            }
        }
    }

    /// Walks the trie from the frames in `stack` with the validator's probe, descending only into accepted
    /// prefixes, and adds every accepted token to `out`.
    /// With `hints`, edges outside [`Validator::probe_hint`] are skipped without stepping the probe.
    fn walk(&self, v: &Validator, mut stack: Vec<Frame>, io: (&dyn Fn(u32) -> Vec<u8>, &mut TokenMask), hints: bool) {
        let (token_bytes, out) = io;
        let mut unsure = Vec::new();
        while let Some((node, probe, skip)) = stack.pop() {
            let hint = if hints { v.probe_hint(&probe) } else { ByteSet([u64::MAX; 4]) };
            for &(b, child) in self.trie.edges(node) {
                if b >= 0x80 {
                    break; // the validator accepts ASCII only; edges are sorted
                }
                if skip.contains(b) || !hint.contains(b) {
                    continue;
                }
                match v.probe_step(&probe, b) {
                    ProbeStep::Refused => {}
                    ProbeStep::Ok(p) => {
                        for &id in self.trie.ends(child) {
                            out.insert(id);
                        }
                        if !self.trie.edges(child).is_empty() {
                            stack.push((child, p, ByteSet::EMPTY));
                        }
                    }
                    ProbeStep::Unsure => {
                        unsure.clear();
                        self.trie.subtree(child, &mut unsure);
                        for &id in &unsure {
                            if v.allows(&token_bytes(id)) {
                                out.insert(id);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The reference for [`TokenConstraint::allowed`]: the same set, from one walk of the whole trie with no
    /// cache and no byte hints, as ids in increasing order. Slow inside open labels (it visits most of the vocabulary); kept for
    /// tests and the benchmark.
    pub fn allowed_by_full_walk(&self, v: &Validator, token_bytes: &dyn Fn(u32) -> Vec<u8>, out: &mut Vec<u32>) {
        let mut mask = self.new_mask();
        self.walk(v, vec![(self.trie.root(), v.probe(), ByteSet::EMPTY)], (token_bytes, &mut mask), false);
        if v.is_complete() {
            for &id in &self.end_ids {
                mask.insert(id);
            }
        }
        out.clear();
        out.extend(mask.iter());
    }
}

/// The validator configuration a request's [`Constraint`] asks for.
pub fn validator_for(c: &Constraint) -> Result<Validator, String> {
    let strict = StrictConfig { canvas: Canvas::new(c.canvas.0, c.canvas.1), ..StrictConfig::default() };
    let vocab = |list: &Option<std::sync::Arc<Vec<String>>>| {
        list.as_ref().map(|l| LabelVocab::new(l.iter().map(|s| canonical(c.schema, s))))
    };
    let cfg = ValidatorConfig {
        strict,
        names: vocab(&c.objects),
        predicates: vocab(&c.predicates),
        canonical_numbers: true,
        ..Default::default()
    };
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

#[cfg(test)]
mod tests;
