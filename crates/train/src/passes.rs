//! How a training step's examples become forward/backward passes on the CPU's threads.
//!
//! A model as small as the demo's keeps about one core busy per forward/backward pass, and a pass pads its examples
//! to the longest of them. On the CPU a step's examples are therefore sorted by length and cut into passes of a
//! few examples ([`CPU_PASS`]), and the passes are dealt to the threads so that the threads' padded tokens balance
//! ([`plan`]); each thread runs its passes one after the other ([`on_threads`]). Before, a micro-batch was cut into
//! one length-sorted half per thread: the thread with the long half padded to the longest example and the other
//! waited for it (demo SFT on two cores: 270 steps in 146 s, 330–340 with these passes). On a GPU, which is bound
//! by launching kernels, fewer and larger passes are better: [`layout`] gives one thread and the caller's pass size.
//!
//! The threads are rayon's: candle's CPU kernels parallelise with rayon, and from a thread outside its pool every
//! such op would be handed to the pool and waited for (`sgvlm_model::ops::on_pool`).

use candle_core::Device;

use crate::batch::Example;
use crate::error::{Result, TrainError};

/// Examples per pass on the CPU. A demo step on one core costs about the same per padded token at 1, 2, 4 or 8
/// examples per pass (`examples/profile_demo_step.rs`: 155–167 µs), so short passes of examples of similar length
/// waste the least on padding.
pub const CPU_PASS: usize = 2;

/// Threads and examples per pass for `device`: on the CPU `threads` (0: one per available core) and at most
/// [`CPU_PASS`] examples (or `max_pass`, if fewer); elsewhere one thread and `max_pass`.
pub fn layout(device: &Device, threads: usize, max_pass: usize) -> (usize, usize) {
    match (device, threads) {
        (Device::Cpu, 0) => (std::thread::available_parallelism().map_or(1, |n| n.get()), CPU_PASS.min(max_pass)),
        (Device::Cpu, n) => (n, CPU_PASS.min(max_pass)),
        _ => (1, max_pass),
    }
}

/// Splits `idx` into passes of at most `pass_size` examples of similar length (sorted longest first, ties in the
/// order given, then cut) and deals the passes, longest first, each to the thread with the fewest padded tokens
/// so far (ties to the lower thread). Returns each thread's passes; threads without any are left out.
/// Deterministic in the examples' lengths.
pub fn plan(idx: &[usize], examples: &[Example], threads: usize, pass_size: usize) -> Vec<Vec<Vec<usize>>> {
    let mut sorted = idx.to_vec();
    sorted.sort_by_key(|&i| std::cmp::Reverse(examples[i].len()));
    let passes: Vec<Vec<usize>> = sorted.chunks(pass_size.max(1)).map(<[usize]>::to_vec).collect();
    let mut loads = vec![0usize; threads.clamp(1, passes.len().max(1))];
    let mut plan: Vec<Vec<Vec<usize>>> = vec![Vec::new(); loads.len()];
    for pass in passes {
        // The first example of a pass is its longest: the pass pads to it.
        let cost = pass.first().map_or(0, |&i| examples[i].len()) * pass.len();
        let lightest = (0..loads.len()).min_by_key(|&t| loads[t]).unwrap_or(0);
        loads[lightest] += cost;
        plan[lightest].push(pass);
    }
    plan.retain(|t| !t.is_empty());
    plan
}

/// Runs `f` on each thread's passes of `plan`, the threads in parallel on rayon's pool (inline when there is one);
/// the results come back in thread order. A panic in `f` becomes an error.
pub fn on_threads<T: Send>(plan: &[Vec<Vec<usize>>], f: impl Fn(&[Vec<usize>]) -> Result<T> + Sync) -> Vec<Result<T>> {
    let guarded = |passes: &[Vec<usize>]| -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(passes)))
            .unwrap_or_else(|_| Err(TrainError::Input("a training thread panicked".into())))
    };
    if plan.len() <= 1 {
        return plan.iter().map(|p| guarded(p)).collect();
    }
    let mut slots: Vec<Option<Result<T>>> = plan.iter().map(|_| None).collect();
    rayon::scope(|s| {
        for (slot, passes) in slots.iter_mut().zip(plan) {
            let guarded = &guarded;
            s.spawn(move |_| *slot = Some(guarded(passes)));
        }
    });
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(TrainError::Input("a training thread did not run".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(lens: &[usize]) -> Vec<Example> {
        lens.iter().map(|&n| Example { prompt: vec![1; 4], target: vec![2; n - 4], image: None }).collect()
    }

    /// Padded tokens of the slowest thread and of all threads together.
    fn loads(plan: &[Vec<Vec<usize>>], ex: &[Example]) -> (usize, usize) {
        let per_thread: Vec<usize> = plan
            .iter()
            .map(|t| t.iter().map(|p| p.iter().map(|&i| ex[i].len()).max().unwrap_or(0) * p.len()).sum())
            .collect();
        (per_thread.iter().copied().max().unwrap_or(0), per_thread.iter().sum())
    }

    #[test]
    fn passes_cover_every_example_once_and_balance_the_threads() {
        // The demo's first batch of 16 (prompt 86 + targets; examples/profile_demo_step.rs).
        let targets = [269, 155, 176, 151, 234, 231, 182, 138, 166, 218, 103, 183, 222, 190, 226, 231];
        let lens: Vec<usize> = targets.iter().map(|t| 86 + t).collect();
        let ex = examples(&lens);
        let idx: Vec<usize> = (0..ex.len()).collect();
        let dealt = plan(&idx, &ex, 2, 2);
        assert_eq!(dealt.len(), 2);
        let mut seen: Vec<usize> = dealt.iter().flatten().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, idx, "every example in exactly one pass");
        assert!(dealt.iter().flatten().all(|p| !p.is_empty() && p.len() <= 2));
        let (slowest, all) = loads(&dealt, &ex);
        let real: usize = lens.iter().sum();
        // Two halves by length (the former split) leave the slower thread 2,840 padded tokens.
        assert!(slowest <= real / 2 + 200, "slowest thread {slowest} padded tokens for {real} real");
        assert!(all - real < 200, "{} padding tokens", all - real);
        assert_eq!(dealt, plan(&idx, &ex, 2, 2), "not deterministic");
    }

    #[test]
    fn one_thread_or_one_pass_keeps_everything_together_where_asked() {
        let ex = examples(&[10, 30, 20]);
        let idx = [2, 0, 1];
        assert_eq!(plan(&idx, &ex, 1, usize::MAX), vec![vec![vec![1, 2, 0]]]);
        assert_eq!(plan(&idx, &ex, 8, 1).len(), 3, "more threads than passes");
        assert_eq!(plan(&[], &ex, 2, 2), Vec::<Vec<Vec<usize>>>::new());
    }
}
