//! Helpers shared by the integration tests.

use sgvlm_train::batch::Example;

/// `n` text-only examples of varying lengths over the first 2,000 token ids (deterministic).
pub fn toy_examples(n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let prompt: Vec<u32> = (0..(6 + i % 5)).map(|k| ((i * 31 + k * 7) % 2000) as u32).collect();
            let target: Vec<u32> = (0..(4 + i % 3)).map(|k| ((i * 17 + k * 3) % 2000) as u32).collect();
            Example { prompt, target, image: None }
        })
        .collect()
}
