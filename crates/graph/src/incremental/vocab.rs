//! Small data structures of the incremental validator: closed label vocabularies as byte tries, 256-bit sets of
//! bytes, and 256-bit sets of object ids.

/// A closed list of labels (e.g. the PSG object classes, or the predicates of one relation family), stored as a
/// byte trie so that a partial label is checked in O(1) per byte.
///
/// Entries are matched exactly, byte for byte: a vocabulary makes labels case-sensitive, so entries should be the
/// canonical lowercase spelling (the validator refuses a vocabulary whose entries are not canonical lowercase
/// labels of its schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    nodes: Vec<Node>,
    entries: Vec<String>,
    /// Label hashes of the entries in depth-first order, so that each node's entries are one slice (`Node::span`).
    hashes: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    terminal: bool,
    /// Children sorted by byte.
    edges: Vec<(u8, u32)>,
    /// The entries at or below this node: `hashes[span.0..span.1]`.
    span: (u32, u32),
}

pub(super) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub(super) const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One byte of a label's running hash (over lowercase bytes).
#[inline]
pub(super) fn hash_byte(h: u64, b: u8) -> u64 {
    (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(FNV_PRIME)
}

/// The final avalanche, so that nearby labels spread over the hash map's buckets.
#[inline]
pub(super) fn hash_finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The hash the validator gives a complete label.
pub(super) fn label_hash(label: &[u8]) -> u64 {
    hash_finish(label.iter().fold(FNV_OFFSET, |h, &b| hash_byte(h, b)))
}

impl Vocab {
    /// Builds the trie; duplicates are ignored.
    pub fn new<I, S>(entries: I) -> Vocab
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v = Vocab { nodes: vec![Node::default()], entries: Vec::new(), hashes: Vec::new() };
        for e in entries {
            let e = e.as_ref();
            let mut at = 0usize;
            for &b in e.as_bytes() {
                at = match v.nodes[at].edges.binary_search_by_key(&b, |&(c, _)| c) {
                    Ok(i) => v.nodes[at].edges[i].1 as usize,
                    Err(i) => {
                        let child = v.nodes.len();
                        v.nodes.push(Node::default());
                        v.nodes[at].edges.insert(i, (b, child as u32));
                        child
                    }
                };
            }
            if !v.nodes[at].terminal {
                v.nodes[at].terminal = true;
                v.entries.push(e.to_string());
            }
        }
        v.index(Self::ROOT, &mut Vec::new());
        v
    }

    /// Fills `hashes` and every node's span, depth-first from `node` whose label is `path`.
    fn index(&mut self, node: u32, path: &mut Vec<u8>) {
        let lo = self.hashes.len() as u32;
        if self.nodes[node as usize].terminal {
            self.hashes.push(label_hash(path));
        }
        for i in 0..self.nodes[node as usize].edges.len() {
            let (b, child) = self.nodes[node as usize].edges[i];
            path.push(b);
            self.index(child, path);
            path.pop();
        }
        self.nodes[node as usize].span = (lo, self.hashes.len() as u32);
    }

    /// The depth-first indices `lo..hi` of the entries that begin with the prefix leading to `node` (indices into
    /// `hashes_below(ROOT)`).
    pub(super) fn span(&self, node: u32) -> (u32, u32) {
        self.nodes.get(node as usize).map_or((0, 0), |n| n.span)
    }

    /// Label hashes of the entries that begin with the prefix leading to `node`.
    pub(super) fn hashes_below(&self, node: u32) -> &[u64] {
        self.nodes.get(node as usize).map_or(&[], |n| &self.hashes[n.span.0 as usize..n.span.1 as usize])
    }

    /// The distinct entries, in insertion order.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `s` is an entry.
    pub fn contains(&self, s: &str) -> bool {
        let mut at = Self::ROOT;
        for &b in s.as_bytes() {
            match self.child(at, b) {
                Some(c) => at = c,
                None => return false,
            }
        }
        self.is_terminal(at)
    }

    pub(super) const ROOT: u32 = 0;

    /// The node reached from `node` by byte `b`.
    #[inline]
    pub(super) fn child(&self, node: u32, b: u8) -> Option<u32> {
        let edges = &self.nodes.get(node as usize)?.edges;
        // Linear scan: label tries have few children per node.
        edges.iter().find(|&&(c, _)| c == b).map(|&(_, n)| n)
    }

    /// The bytes that continue the entries below `node`.
    pub(super) fn next_bytes(&self, node: u32) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        for &(b, _) in self.nodes.get(node as usize).map_or(&[][..], |n| &n.edges) {
            set.insert(b);
        }
        set
    }

    #[inline]
    pub(super) fn is_terminal(&self, node: u32) -> bool {
        self.nodes.get(node as usize).is_some_and(|n| n.terminal)
    }
}

/// A set of bytes (the bytes that may come next).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ByteSet(pub [u64; 4]);

impl ByteSet {
    pub const EMPTY: ByteSet = ByteSet([0; 4]);

    #[inline]
    pub fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1u64 << (b & 63);
    }

    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0u8..=255).filter(move |&b| self.contains(b))
    }
}

impl std::fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteSet(")?;
        let s: String = self.iter().map(|b| (b as char).escape_default().to_string()).collect();
        f.write_str(&s)?;
        f.write_str(")")
    }
}

/// A set of object ids `0..=255` (ids are at most [`super::MAX_OBJECTS_SUPPORTED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(super) struct Bits([u64; 4]);

impl Bits {
    /// `{lo..=hi} ∩ {0..=255}`.
    pub fn range(lo: i64, hi: i64) -> Bits {
        let lo = lo.max(0);
        let hi = hi.min(255);
        let mut out = Bits::default();
        if lo > hi {
            return out;
        }
        for (w, word) in out.0.iter_mut().enumerate() {
            let base = (w as i64) * 64;
            let a = lo.max(base);
            let b = hi.min(base + 63);
            if a > b {
                continue;
            }
            let len = (b - a + 1) as u32;
            let mask = if len == 64 { u64::MAX } else { ((1u64 << len) - 1) << (a - base) };
            *word = mask;
        }
        out
    }

    #[inline]
    pub fn set(&mut self, i: u32) {
        if i < 256 {
            self.0[(i >> 6) as usize] |= 1u64 << (i & 63);
        }
    }

    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        i < 256 && self.0[(i >> 6) as usize] & (1u64 << (i & 63)) != 0
    }

    #[inline]
    pub fn unset(&mut self, i: u32) {
        if i < 256 {
            self.0[(i >> 6) as usize] &= !(1u64 << (i & 63));
        }
    }

    #[inline]
    pub fn and(self, o: Bits) -> Bits {
        Bits([self.0[0] & o.0[0], self.0[1] & o.0[1], self.0[2] & o.0[2], self.0[3] & o.0[3]])
    }

    #[inline]
    pub fn and_not(self, o: Bits) -> Bits {
        Bits([self.0[0] & !o.0[0], self.0[1] & !o.0[1], self.0[2] & !o.0[2], self.0[3] & !o.0[3]])
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    #[cfg(test)]
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether some member lies in `lo..=hi`.
    #[inline]
    pub fn any_in(&self, lo: i64, hi: i64) -> bool {
        !self.and(Bits::range(lo, hi)).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie() {
        let v = Vocab::new(["sky", "sky-other-merged", "skateboard", "sky"]);
        assert_eq!(v.len(), 3);
        assert!(v.contains("sky"));
        assert!(!v.contains("sk"));
        assert!(!v.contains("Sky"));
        assert!(v.contains("sky-other-merged"));
        let sk = v.child(Vocab::ROOT, b's').and_then(|n| v.child(n, b'k'));
        assert!(sk.is_some_and(|n| !v.is_terminal(n)));
        let mut below = sk.map(|n| v.hashes_below(n).to_vec()).unwrap_or_default();
        below.sort_unstable();
        let mut want = vec![label_hash(b"sky"), label_hash(b"sky-other-merged"), label_hash(b"skateboard")];
        want.sort_unstable();
        assert_eq!(below, want);
        assert_eq!(v.hashes_below(Vocab::ROOT).len(), 3);
    }

    #[test]
    fn bits() {
        let r = Bits::range(3, 130);
        assert_eq!(r.count(), 128);
        assert!(r.any_in(130, 300));
        assert!(!r.any_in(131, 300));
        assert!(!r.any_in(0, 2));
        assert_eq!(Bits::range(0, 255).count(), 256);
        assert_eq!(Bits::range(-5, 63).count(), 64);
        assert!(Bits::range(10, 9).is_empty());
        let mut b = Bits::default();
        b.set(64);
        b.set(300);
        assert_eq!(b.count(), 1);
        b.unset(64);
        assert!(b.is_empty());
    }

    #[test]
    fn byteset() {
        let mut s = ByteSet::EMPTY;
        s.insert(b'0');
        s.insert(255);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![b'0', 255]);
        assert_eq!(s.len(), 2);
    }
}
