//! The per-label-state cache that makes open-vocabulary labels cheap.
//!
//! Inside a label with an open vocabulary (`Validator::free_label` is `Some(key)`), most of the vocabulary —
//! every token made only of label bytes — is allowed or refused as a function of the key alone (the validator's
//! documented contract). Walking those tokens each step visits most of the trie (hundreds of thousands of nodes
//! with a 248k vocabulary), so the first step in each key walks them once and keeps:
//! - `pure`: the accepted tokens made only of class bytes, as mask words to copy;
//! - `exits`: every trie node reached by an accepted class-byte prefix (the root included, with the empty prefix)
//!   that has an outgoing ASCII edge outside the class. Tokens through those edges end the label, so they depend
//!   on the whole state and are walked each step, starting at the exit after stepping the probe over the prefix.
//!
//! With a byte-level BPE vocabulary words rarely go on with punctuation, so the exits are few and a step costs a
//! copy of the mask words plus a small walk.

use std::sync::{Arc, Mutex};

use sgvlm_graph::incremental::{FreeLabel, ProbeStep, Validator};

use super::TokenTrie;

/// Where the label ends inside some tokens: the class-byte prefix from the root and the node it leads to.
#[derive(Debug)]
pub(super) struct Exit {
    pub prefix: Box<[u8]>,
    pub node: u32,
}

#[derive(Debug)]
pub(super) struct FreeCache {
    pub pure: Vec<u64>,
    pub exits: Vec<Exit>,
    /// The validator answered "unsure" for a class-byte prefix, so the cache does not hold; walk in full.
    pub uncacheable: bool,
}

impl FreeCache {
    fn build(key: FreeLabel, trie: &TokenTrie, v: &Validator, vocab_len: usize) -> FreeCache {
        let mut pure = vec![0u64; vocab_len.div_ceil(64)];
        let mut exits = Vec::new();
        let mut uncacheable = false;
        let mut stack = vec![(trie.root(), v.probe(), Vec::new())];
        while let Some((node, probe, prefix)) = stack.pop() {
            let edges = trie.edges(node);
            if edges.iter().any(|&(b, _)| b < 0x80 && !key.class.contains(b)) {
                exits.push(Exit { prefix: prefix.clone().into_boxed_slice(), node });
            }
            for &(b, child) in edges {
                if !key.class.contains(b) {
                    continue;
                }
                match v.probe_step(&probe, b) {
                    ProbeStep::Refused => {}
                    ProbeStep::Ok(p) => {
                        for &id in trie.ends(child) {
                            if let Some(w) = pure.get_mut((id >> 6) as usize) {
                                *w |= 1u64 << (id & 63);
                            }
                        }
                        let mut pre = prefix.clone();
                        pre.push(b);
                        stack.push((child, p, pre));
                    }
                    ProbeStep::Unsure => uncacheable = true,
                }
            }
        }
        FreeCache { pure, exits, uncacheable }
    }
}

/// The caches of the keys met so far (a handful: two label schemas × two shapes), built at first use. Clones of a
/// `TokenConstraint` share them.
#[derive(Debug, Clone, Default)]
pub(super) struct FreeCaches(Arc<Mutex<Vec<Keyed>>>);

type Keyed = (FreeLabel, Arc<FreeCache>);

impl FreeCaches {
    pub fn get(&self, key: FreeLabel, trie: &TokenTrie, v: &Validator, vocab_len: usize) -> Arc<FreeCache> {
        let mut caches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = caches.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let c = Arc::new(FreeCache::build(key, trie, v, vocab_len));
        caches.push((key, c.clone()));
        c
    }
}
