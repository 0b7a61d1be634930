//! The allowed-token set of one decoding step, as a bitset over token ids: filling it costs a copy of a cached
//! bitset plus the few ids found by the trie walk, and the sampler reads it without a per-id lookup.

/// A set of token ids `0..len`, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenMask {
    words: Vec<u64>,
}

impl TokenMask {
    /// An empty mask for ids `0..len`.
    pub fn new(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(64)] }
    }

    /// Number of ids the mask can hold (a multiple of 64).
    pub fn capacity(&self) -> usize {
        self.words.len() * 64
    }

    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Adds `id`; ids beyond the capacity are ignored (the trie only holds ids of the vocabulary it was made for).
    #[inline]
    pub fn insert(&mut self, id: u32) {
        if let Some(w) = self.words.get_mut((id >> 6) as usize) {
            *w |= 1u64 << (id & 63);
        }
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.words.get((id >> 6) as usize).is_some_and(|w| w & (1u64 << (id & 63)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of ids in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((i as u32) << 6 | bit)
            })
        })
    }

    /// The raw words: bit `id % 64` of word `id / 64` is set when `id` is allowed.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Replaces the contents with `words` (same length as this mask's).
    pub(super) fn copy_from(&mut self, words: &[u64]) {
        self.words.copy_from_slice(words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_iterate_count() {
        let mut m = TokenMask::new(130);
        assert_eq!(m.capacity(), 192);
        assert!(m.is_empty());
        for id in [129, 0, 64, 63, 5, 64, 1000] {
            m.insert(id);
        }
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 5, 63, 64, 129]);
        assert_eq!(m.count(), 5);
        assert!(m.contains(63) && !m.contains(62) && !m.contains(1000));
        m.clear();
        assert!(m.is_empty());
    }
}
