//! A byte trie over the vocabulary's non-special tokens, built once per engine.
//!
//! Nodes are stored flat: each node's outgoing edges are a contiguous, byte-sorted slice of `edges`, and the ids of
//! the tokens that end at a node a contiguous slice of `ends`. Walking it with the validator's probe visits each
//! shared prefix once, so one walk yields every allowed token.

/// One node: its edges `edges[edge_start..edge_start+edge_len]`, its tokens `ends[end_start..end_start+end_len]`.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    edge_start: u32,
    edge_len: u32,
    end_start: u32,
    end_len: u32,
}

/// The token trie.
#[derive(Debug, Clone, Default)]
pub struct TokenTrie {
    nodes: Vec<Node>,
    /// `(byte, child node)`.
    edges: Vec<(u8, u32)>,
    ends: Vec<u32>,
}

impl TokenTrie {
    /// Builds the trie over `(id, bytes)` pairs (empty byte strings are skipped).
    pub fn new<'a>(tokens: impl IntoIterator<Item = (u32, &'a [u8])>) -> Self {
        let mut sorted: Vec<(&[u8], u32)> =
            tokens.into_iter().filter(|(_, b)| !b.is_empty()).map(|(i, b)| (b, i)).collect();
        sorted.sort_unstable();
        let mut trie = TokenTrie::default();
        trie.nodes.push(Node::default());
        // Breadth-first over (node, range of sorted tokens sharing the node's prefix, depth) so that every node's
        // edges are allocated contiguously.
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize, sorted.len(), 0usize)]);
        while let Some((node, lo, hi, depth)) = queue.pop_front() {
            let mut i = lo;
            let end_start = trie.ends.len() as u32;
            while i < hi && sorted[i].0.len() == depth {
                trie.ends.push(sorted[i].1);
                i += 1;
            }
            let edge_start = trie.edges.len() as u32;
            while i < hi {
                let b = sorted[i].0[depth];
                let j = i + sorted[i..hi].partition_point(|t| t.0[depth] == b);
                let child = trie.nodes.len();
                trie.nodes.push(Node::default());
                trie.edges.push((b, child as u32));
                queue.push_back((child, i, j, depth + 1));
                i = j;
            }
            trie.nodes[node] = Node {
                edge_start,
                edge_len: trie.edges.len() as u32 - edge_start,
                end_start,
                end_len: trie.ends.len() as u32 - end_start,
            };
        }
        trie
    }

    pub fn root(&self) -> u32 {
        0
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `(byte, child)` edges of `node`, sorted by byte.
    pub fn edges(&self, node: u32) -> &[(u8, u32)] {
        let n = self.nodes[node as usize];
        &self.edges[n.edge_start as usize..(n.edge_start + n.edge_len) as usize]
    }

    /// Ids of the tokens whose bytes end exactly at `node`.
    pub fn ends(&self, node: u32) -> &[u32] {
        let n = self.nodes[node as usize];
        &self.ends[n.end_start as usize..(n.end_start + n.end_len) as usize]
    }

    /// Every token id in the subtree of `node` (itself included).
    pub fn subtree(&self, node: u32, out: &mut Vec<u32>) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            out.extend_from_slice(self.ends(n));
            stack.extend(self.edges(n).iter().map(|e| e.1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_is_reachable_by_its_bytes() {
        let toks: Vec<(u32, &[u8])> =
            vec![(0, b"a"), (1, b"ab"), (2, b"abc"), (3, b"b"), (4, b""), (5, b"ab"), (6, b"ba")];
        let trie = TokenTrie::new(toks.iter().copied());
        let find = |bytes: &[u8]| {
            let mut n = trie.root();
            for &b in bytes {
                n = trie.edges(n).iter().find(|e| e.0 == b).map(|e| e.1).unwrap();
            }
            let mut v = trie.ends(n).to_vec();
            v.sort();
            v
        };
        assert_eq!(find(b"a"), vec![0]);
        assert_eq!(find(b"ab"), vec![1, 5]);
        assert_eq!(find(b"abc"), vec![2]);
        assert_eq!(find(b"ba"), vec![6]);
        let mut all = Vec::new();
        trie.subtree(trie.root(), &mut all);
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 5, 6]);
    }
}
