//! Our port of SciPy's rectangular shortest-augmenting-path solver (`scipy/optimize/rectangular_lsap`, Crouse
//! 2016), with a reusable workspace.
//!
//! Why our own port rather than the `lsap` crate (itself a line-by-line port, which we used before): `lsap::solve`
//! allocates about ten vectors and copies the cost matrix on every call, and the rewards and the strict
//! evaluation solve one small assignment per row — the allocations cost more than the solve. This port keeps
//! every step that decides ties exactly as SciPy (and `lsap`) do:
//! - tall matrices are transposed (columns become rows) and the result is sorted back by row;
//! - `remaining` is filled in reverse column order before every augmenting path (a constant matrix gives the
//!   identity, SciPy #11602), and a visited column is removed by moving the last entry into its slot;
//! - on equal reduced cost the scan keeps the earlier candidate unless the new column is unassigned;
//! - the dual updates and the path augmentation are SciPy's, operation for operation (same floating-point order).
//!
//! The caller checks the shape and rejects non-finite entries first ([`super::linear_sum_assignment`]).

use std::cell::RefCell;

/// Marks "no row / no column" (SciPy's `-1`).
const NONE: usize = usize::MAX;

/// Scratch vectors of one solve, kept between calls (per thread).
#[derive(Default)]
struct Workspace {
    transposed: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    shortest: Vec<f64>,
    path: Vec<usize>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    sr: Vec<bool>,
    sc: Vec<bool>,
    remaining: Vec<usize>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

fn reset<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
    v.clear();
    v.resize(n, x);
}

/// Solves a non-empty, all-finite `nr × nc` row-major problem; appends the `(row, col)` pairs sorted by row to
/// `out`. Returns `false` when no complete assignment exists (cannot happen with finite costs).
pub(super) fn solve(cost: &[f64], nr: usize, nc: usize, out: &mut Vec<(usize, usize)>) -> bool {
    WORKSPACE.with(|ws| match ws.try_borrow_mut() {
        Ok(mut ws) => solve_in(&mut ws, cost, nr, nc, out),
        // Only reachable through re-entrancy, which nothing here does; solve with a fresh workspace.
        Err(_) => solve_in(&mut Workspace::default(), cost, nr, nc, out),
    })
}

fn solve_in(ws: &mut Workspace, cost: &[f64], nr: usize, nc: usize, out: &mut Vec<(usize, usize)>) -> bool {
    let transpose = nc < nr;
    let (nr, nc, cost) = if transpose {
        let mut t = std::mem::take(&mut ws.transposed);
        reset(&mut t, nr * nc, 0.0);
        for i in 0..nr {
            for j in 0..nc {
                t[j * nr + i] = cost[i * nc + j];
            }
        }
        ws.transposed = t;
        (nc, nr, &ws.transposed[..])
    } else {
        (nr, nc, cost)
    };
    if distinct_row_minima(cost, nr, nc, &mut ws.col4row) {
        out.clear();
        let col4row = &ws.col4row;
        if transpose {
            // Original rows are our columns: sorted by original row, as below.
            reset(&mut ws.row4col, nc, NONE);
            for (i, &j) in col4row.iter().enumerate() {
                ws.row4col[j] = i;
            }
            out.extend((0..nc).filter(|&j| ws.row4col[j] != NONE).map(|j| (j, ws.row4col[j])));
        } else {
            out.extend(col4row.iter().enumerate().map(|(i, &j)| (i, j)));
        }
        return true;
    }
    reset(&mut ws.u, nr, 0.0);
    reset(&mut ws.v, nc, 0.0);
    reset(&mut ws.shortest, nc, f64::INFINITY);
    reset(&mut ws.path, nc, NONE);
    reset(&mut ws.col4row, nr, NONE);
    reset(&mut ws.row4col, nc, NONE);
    reset(&mut ws.sr, nr, false);
    reset(&mut ws.sc, nc, false);
    reset(&mut ws.remaining, nc, NONE);
    let Workspace { u, v, shortest, path, col4row, row4col, sr, sc, remaining, .. } = ws;

    for cur_row in 0..nr {
        let Some((sink, min_val)) =
            augmenting_path(cost, nc, u, v, path, row4col, shortest, cur_row, sr, sc, remaining)
        else {
            return false;
        };
        u[cur_row] += min_val;
        for i in 0..nr {
            if sr[i] && i != cur_row {
                u[i] += min_val - shortest[col4row[i]];
            }
        }
        for j in 0..nc {
            if sc[j] {
                v[j] -= min_val - shortest[j];
            }
        }
        let mut j = sink;
        loop {
            let i = path[j];
            row4col[j] = i;
            std::mem::swap(&mut col4row[i], &mut j);
            if i == cur_row {
                break;
            }
        }
    }

    out.clear();
    if transpose {
        // Original rows are our columns: walk them in order (sorted by original row, as SciPy's argsort).
        out.extend((0..nc).filter(|&j| row4col[j] != NONE).map(|j| (j, row4col[j])));
    } else {
        out.extend(col4row.iter().enumerate().map(|(i, &j)| (i, j)));
    }
    true
}

/// The shortcut for the common easy case (`nr ≤ nc`): every row has a **strict** unique minimum and no two rows
/// share its column. `col4row` then holds those columns, which is exactly what the solver below returns: for row
/// `i`, with `u`, `v` and `min_val` still all 0 (by induction), every reduced cost `0 + c − 0 − 0` is `c` itself,
/// so the scan picks the row's unique minimum; its column is unassigned (distinct minima), so the augmenting path
/// ends there at once, `u[i]` takes the minimum and `v` of that column changes by `min_val − shortest = 0`.
/// Nothing else is touched, and the next row starts from the same state. `false`: take the general solver.
fn distinct_row_minima(cost: &[f64], nr: usize, nc: usize, col4row: &mut Vec<usize>) -> bool {
    col4row.clear();
    for row in cost.chunks_exact(nc).take(nr) {
        // The minimum, then its first column and how many entries equal it: branch-free passes (a running
        // "new minimum?" branch mispredicts on every row). The costs are finite, so `<` and `==` order them totally
        // (with −0 = +0, as in the solver's own comparisons).
        let min = row.iter().fold(f64::INFINITY, |m, &c| if c < m { c } else { m });
        let ties = row.iter().map(|&c| usize::from(c == min)).sum::<usize>();
        let Some(best) = row.iter().position(|&c| c == min) else {
            return false;
        };
        if ties != 1 || col4row.contains(&best) {
            return false;
        }
        col4row.push(best);
    }
    true
}

/// One shortest augmenting path from `start`: `(sink column, min_val)`, `None` when infeasible.
#[allow(clippy::too_many_arguments)]
fn augmenting_path(
    cost: &[f64],
    nc: usize,
    u: &[f64],
    v: &[f64],
    path: &mut [usize],
    row4col: &[usize],
    shortest: &mut [f64],
    start: usize,
    sr: &mut [bool],
    sc: &mut [bool],
    remaining: &mut [usize],
) -> Option<(usize, f64)> {
    let mut min_val = 0.0;
    let mut num_remaining = nc;
    for (it, r) in remaining.iter_mut().enumerate() {
        *r = nc - it - 1;
    }
    sr.fill(false);
    sc.fill(false);
    shortest.fill(f64::INFINITY);

    let mut i = start;
    loop {
        let mut index = NONE;
        let mut lowest = f64::INFINITY;
        sr[i] = true;
        let row = &cost[i * nc..(i + 1) * nc];
        for (it, &j) in remaining[..num_remaining].iter().enumerate() {
            let r = min_val + row[j] - u[i] - v[j];
            if r < shortest[j] {
                path[j] = i;
                shortest[j] = r;
            }
            if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == NONE) {
                lowest = shortest[j];
                index = it;
            }
        }
        min_val = lowest;
        if min_val.is_infinite() || index == NONE {
            return None;
        }
        let j = remaining[index];
        sc[j] = true;
        num_remaining -= 1;
        remaining[index] = remaining[num_remaining];
        if row4col[j] == NONE {
            return Some((j, min_val));
        }
        i = row4col[j];
    }
}
