//! Minimum-cost assignment and one-to-one matching.
//!
//! [`linear_sum_assignment`] must break exact ties the way SciPy's `linear_sum_assignment` does, because the
//! reference's rewards and metrics call SciPy and duplicate boxes produce equal costs. [`sap`] is our port of SciPy's
//! shortest-augmenting-path solver (Crouse 2016, the same `remaining` ordering, the same "prefer an unassigned column
//! on equal cost" rule, transposition of tall matrices, row-sorted output) with a reusable per-thread workspace; it
//! replaced the `lsap` crate, which solves identically but allocates a dozen vectors per call (see [`sap`]). One
//! difference from SciPy: `+inf` entries are rejected (SciPy treats them as forbidden edges); no caller here
//! produces infinite costs.
//!
//! [`max_matching`] is the reward's one-to-one edge matching: Kuhn's augmenting paths, predictions visited in order,
//! each trying its candidates in the given order.

mod sap;

/// Why an assignment could not be solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// A NaN or infinite cost (SciPy: "matrix contains invalid numeric entries").
    #[error("cost matrix contains invalid numeric entries")]
    Invalid,
    /// No complete assignment exists.
    #[error("cost matrix is infeasible")]
    Infeasible,
    #[error("a {rows} x {cols} cost matrix needs {} values, not {len}", rows * cols)]
    Shape { rows: usize, cols: usize, len: usize },
}

/// Solves the rectangular assignment problem on a row-major `rows × cols` cost matrix; returns `min(rows, cols)`
/// `(row, col)` pairs sorted by row, as SciPy does.
pub fn linear_sum_assignment(cost: &[f64], rows: usize, cols: usize) -> Result<Vec<(usize, usize)>, AssignError> {
    let mut out = Vec::with_capacity(rows.min(cols));
    linear_sum_assignment_into(cost, rows, cols, &mut out)?;
    Ok(out)
}

/// [`linear_sum_assignment`] into `out` (cleared first), for callers that solve one problem per row.
pub fn linear_sum_assignment_into(
    cost: &[f64],
    rows: usize,
    cols: usize,
    out: &mut Vec<(usize, usize)>,
) -> Result<(), AssignError> {
    out.clear();
    if cost.len() != rows * cols {
        return Err(AssignError::Shape { rows, cols, len: cost.len() });
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    if cost.iter().any(|c| !c.is_finite()) {
        return Err(AssignError::Invalid);
    }
    if sap::solve(cost, rows, cols, out) {
        Ok(())
    } else {
        Err(AssignError::Infeasible)
    }
}

/// Candidate lists of a matching stored flat (one buffer for all left nodes): left node `i` may take
/// `targets[starts[i]..starts[i + 1]]`, in preference order. Building one costs two allocations instead of one per
/// left node.
#[derive(Debug, Clone, Default)]
pub struct FlatCandidates {
    starts: Vec<usize>,
    targets: Vec<usize>,
}

impl FlatCandidates {
    pub fn with_capacity(left: usize) -> Self {
        let mut starts = Vec::with_capacity(left + 1);
        starts.push(0);
        FlatCandidates { starts, targets: Vec::with_capacity(left) }
    }

    /// Removes every left node, keeping the buffers.
    pub fn clear(&mut self) {
        self.starts.clear();
        self.starts.push(0);
        self.targets.clear();
    }

    /// Appends the next left node with its candidates.
    pub fn push(&mut self, candidates: impl IntoIterator<Item = usize>) {
        self.targets.extend(candidates);
        self.starts.push(self.targets.len());
    }

    fn of(&self, left: usize) -> &[usize] {
        &self.targets[self.starts[left]..self.starts[left + 1]]
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }
}

/// Size of the maximum one-to-one matching [`max_matching`] finds (same visiting order), on flat candidate lists.
pub fn max_matching_size(candidates: &FlatCandidates, n_right: usize) -> usize {
    MatchingScratch::default().max_matching_size(candidates, n_right)
}

/// The buffers of [`max_matching_size`], kept between calls.
#[derive(Debug, Clone, Default)]
pub struct MatchingScratch {
    owner: Vec<usize>,
    seen: Vec<bool>,
}

impl MatchingScratch {
    /// [`max_matching_size`] in these buffers.
    pub fn max_matching_size(&mut self, candidates: &FlatCandidates, n_right: usize) -> usize {
        let (owner, seen) = (&mut self.owner, &mut self.seen);
        owner.clear();
        owner.resize(n_right, usize::MAX);
        seen.clear();
        seen.resize(n_right, false);
        let mut size = 0;
        for left in 0..candidates.len() {
            if candidates.of(left).is_empty() {
                continue;
            }
            seen.iter_mut().for_each(|s| *s = false);
            if augment_flat(left, candidates, owner, seen) {
                size += 1;
            }
        }
        size
    }
}

fn augment_flat(left: usize, candidates: &FlatCandidates, owner: &mut [usize], seen: &mut [bool]) -> bool {
    for &right in candidates.of(left) {
        if right >= seen.len() || seen[right] {
            continue;
        }
        seen[right] = true;
        if owner[right] == usize::MAX || augment_flat(owner[right], candidates, owner, seen) {
            owner[right] = left;
            return true;
        }
    }
    false
}

/// Maximum one-to-one matching by Kuhn's augmenting paths. `candidates[i]` lists the right-hand indices (`<
/// n_right`) left node `i` may take, in preference order. Returns `owner[j]` = the left node matched to right node
/// `j`, if any.
pub fn max_matching(candidates: &[Vec<usize>], n_right: usize) -> Vec<Option<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; n_right];
    let mut seen = vec![false; n_right];
    for left in 0..candidates.len() {
        seen.iter_mut().for_each(|s| *s = false);
        augment(left, candidates, &mut owner, &mut seen);
    }
    owner
}

fn augment(left: usize, candidates: &[Vec<usize>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for &right in &candidates[left] {
        if right >= seen.len() || seen[right] {
            continue;
        }
        seen[right] = true;
        let free = match owner[right] {
            None => true,
            Some(other) => augment(other, candidates, owner, seen),
        };
        if free {
            owner[right] = Some(left);
            return true;
        }
    }
    false
}

/// Number of matched pairs in a [`max_matching`] result.
pub fn matching_size(owner: &[Option<usize>]) -> usize {
    owner.iter().filter(|o| o.is_some()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scipy_examples() {
        let cost = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
        assert_eq!(linear_sum_assignment(&cost, 3, 3).unwrap(), vec![(0, 1), (1, 0), (2, 2)]);
        // A constant matrix gives the identity (SciPy #11602).
        assert_eq!(linear_sum_assignment(&[1.0; 9], 3, 3).unwrap(), vec![(0, 0), (1, 1), (2, 2)]);
        // Tall matrices are transposed and the result sorted by row.
        let tall = [5.0, 1.0, 1.0, 5.0, 3.0, 3.0];
        assert_eq!(linear_sum_assignment(&tall, 3, 2).unwrap(), vec![(0, 1), (1, 0)]);
        assert_eq!(linear_sum_assignment(&[], 0, 4).unwrap(), vec![]);
        assert_eq!(linear_sum_assignment(&[f64::NAN], 1, 1), Err(AssignError::Invalid));
        assert!(matches!(linear_sum_assignment(&[1.0], 1, 2), Err(AssignError::Shape { .. })));
    }

    #[test]
    fn kuhn_reassigns_along_augmenting_paths() {
        // Left 0 prefers right 0; left 1 can only take right 0, so left 0 moves to right 1.
        let owner = max_matching(&[vec![0, 1], vec![0]], 2);
        assert_eq!(owner, vec![Some(1), Some(0)]);
        assert_eq!(matching_size(&max_matching(&[vec![0], vec![0], vec![]], 1)), 1);
    }

    proptest! {
        /// The flat form finds matchings of the same size as the nested one.
        #[test]
        fn flat_equals_nested(lists in proptest::collection::vec(proptest::collection::vec(0usize..6, 0..5), 0..7)) {
            let mut flat = FlatCandidates::with_capacity(lists.len());
            for l in &lists {
                flat.push(l.iter().copied());
            }
            prop_assert_eq!(max_matching_size(&flat, 6), matching_size(&max_matching(&lists, 6)));
        }
    }

    /// Shapes up to 7×7 with costs drawn from a few values (many exact ties) or arbitrary finite floats.
    fn problem() -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
        (1usize..8, 1usize..8).prop_flat_map(|(r, c)| {
            let cell = prop_oneof![(0i32..3).prop_map(f64::from), (-1e6f64..1e6), Just(-0.0), Just(0.5)];
            (Just(r), Just(c), proptest::collection::vec(cell, r * c))
        })
    }

    /// Matrices whose rows mostly have distinct strict minima (the solver's shortcut), with a few ties left in.
    fn easy_problem() -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
        (1usize..8, 1usize..8, any::<u64>()).prop_map(|(r, c, seed)| {
            let mut x = seed | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut cost: Vec<f64> = (0..r * c).map(|_| (next() % 1000) as f64 / 100.0).collect();
            // A clear minimum on a permuted diagonal where the shape allows.
            for i in 0..r.min(c) {
                let (row, col) = if r <= c { (i, (i * 3 + 1) % c) } else { ((i * 3 + 1) % r, i) };
                cost[row * c + col] = -((next() % 4) as f64);
            }
            (r, c, cost)
        })
    }

    proptest! {
        /// The shortcut for distinct row minima answers as `lsap` does (and is taken often on these matrices).
        #[test]
        fn shortcut_equals_lsap((rows, cols, cost) in easy_problem()) {
            let (r, c) = lsap::solve(rows, cols, &cost, false).unwrap();
            let expected: Vec<(usize, usize)> = r.into_iter().zip(c).collect();
            prop_assert_eq!(linear_sum_assignment(&cost, rows, cols).unwrap(), expected);
        }

        /// Our port (`sap`) solves exactly as the `lsap` crate (a line-by-line port of SciPy), ties included.
        #[test]
        fn port_equals_lsap((rows, cols, cost) in problem()) {
            let (r, c) = lsap::solve(rows, cols, &cost, false).unwrap();
            let expected: Vec<(usize, usize)> = r.into_iter().zip(c).collect();
            prop_assert_eq!(linear_sum_assignment(&cost, rows, cols).unwrap(), expected);
        }
    }
}
