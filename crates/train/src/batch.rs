//! Tokenised examples, group-by-length batching and collation into right-padded model inputs.

use candle_core::{Device, Tensor};
use sgvlm_model::positions::rope_index;
use sgvlm_model::{ImageInput, Qwen35};

use crate::error::Result;

/// A preprocessed image: patches `[n, C·T_p·P·P]` row-major and its `(t, h, w)` grid.
pub type ImageData = (Vec<f32>, [usize; 3]);

/// One tokenised example: a prompt (loss-free: the user turn and the empty think block) and the target tokens
/// the loss is taken on (the answer and `<|im_end|>`), with the preprocessed image of the prompt, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub prompt: Vec<u32>,
    pub target: Vec<u32>,
    /// Patches `[n, C·T_p·P·P]` row-major, and the image grid; `None` for text-only examples.
    pub image: Option<ImageData>,
}

impl Example {
    pub fn len(&self) -> usize {
        self.prompt.len() + self.target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch ready for [`hidden_states`]: right-padded ids, images, and where the loss tokens are.
#[derive(Debug)]
pub struct Batch {
    pub ids: Tensor,
    pub pixel_values: Option<Tensor>,
    pub grids: Vec<[usize; 3]>,
    /// Row of the flattened `[B·T]` hidden states that predicts each target token.
    pub rows: Vec<u32>,
    pub targets: Vec<u32>,
    /// Sequence index of each target token (GRPO groups them by completion).
    pub seq_of: Vec<usize>,
}

/// Pads `examples` to the longest and marks the target positions. `pad` fills the right of shorter rows.
pub fn collate(examples: &[&Example], pad: u32, device: &Device) -> Result<Batch> {
    let t = examples.iter().map(|e| e.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(examples.len() * t);
    let (mut rows, mut targets, mut seq_of) = (Vec::new(), Vec::new(), Vec::new());
    let mut pixels = Vec::new();
    let mut grids = Vec::new();
    for (b, e) in examples.iter().enumerate() {
        let start = ids.len();
        ids.extend_from_slice(&e.prompt);
        ids.extend_from_slice(&e.target);
        ids.resize(start + t, pad);
        for (k, &tok) in e.target.iter().enumerate() {
            // The hidden state at position p predicts token p + 1.
            let p = e.prompt.len() + k;
            if p == 0 {
                continue;
            }
            rows.push((b * t + p - 1) as u32);
            targets.push(tok);
            seq_of.push(b);
        }
        if let Some((px, grid)) = &e.image {
            pixels.extend_from_slice(px);
            grids.push(*grid);
        }
    }
    let ids = Tensor::from_vec(ids, (examples.len(), t), device)?;
    let pixel_values = if grids.is_empty() {
        None
    } else {
        let n: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
        let width = pixels.len() / n.max(1);
        Some(Tensor::from_vec(pixels, (n, width), device)?)
    };
    Ok(Batch { ids, pixel_values, grids, rows, targets, seq_of })
}

/// The model's final-normed hidden states `[B·T, H]` for a batch (the LM head is applied by [`crate::loss`]).
pub fn hidden_states(model: &Qwen35, batch: &Batch) -> Result<Tensor> {
    let images = batch.pixel_values.as_ref().map(|pv| ImageInput { pixel_values: pv, grids: &batch.grids });
    let embeds = model.embed(&batch.ids, images)?;
    let (positions, _) = rope_index(&model.config, &batch.ids.to_vec2::<u32>()?, &batch.grids)?;
    let out = model.text.forward(&embeds, &positions, None, false)?;
    let (b, t, h) = out.last_hidden.dims3()?;
    Ok(out.last_hidden.reshape((b * t, h))?)
}

/// The hidden states of the target positions only, `[N, H]`.
pub fn target_hidden(model: &Qwen35, batch: &Batch) -> Result<Tensor> {
    let all = hidden_states(model, batch)?;
    let idx = Tensor::new(batch.rows.as_slice(), all.device())?;
    Ok(all.index_select(&idx, 0)?)
}

/// Group-by-length batching (as transformers' `group_by_length`): a seeded shuffle, then mega-batches of
/// `50 × batch` examples each sorted by length (longest first) and cut into batches, so a batch holds similar
/// lengths and padding stays small while the order stays random across mega-batches.
pub fn group_by_length(lengths: &[usize], batch: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    shuffle(&mut order, seed);
    let batch = batch.max(1);
    let mut out = Vec::new();
    for mega in order.chunks(50 * batch) {
        let mut m = mega.to_vec();
        m.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        out.extend(m.chunks(batch).map(|c| c.to_vec()));
    }
    out
}

/// Plain shuffled batches: a seeded permutation cut into batches. Where the answer's length follows the image
/// content (a scene graph's length grows with its object count), group-by-length batches hold one count each and
/// sweep from long to short within a mega-batch, so every step pushes the count the same way whatever the images
/// show; shuffled batches keep that contrast inside each step.
pub fn shuffled_batches(n: usize, batch: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, seed);
    order.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Fisher–Yates with SplitMix64 (a fixed generator, so an order is reproducible across versions of `rand`).
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut rng = sgvlm_data::synth::Rng::for_item(seed, 0x5eed, 0);
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_batches_cover_every_example_once_in_a_seeded_order() {
        let b = shuffled_batches(10, 4, 1);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = b.concat();
        assert_ne!(all, (0..10).collect::<Vec<_>>(), "shuffled");
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(shuffled_batches(10, 4, 1), b);
    }

    #[test]
    fn group_by_length_covers_every_example_once_and_sorts_within_megabatches() {
        let lengths: Vec<usize> = (0..37).map(|i| (i * 7919) % 101).collect();
        let batches = group_by_length(&lengths, 4, 3);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..37).collect::<Vec<_>>());
        let flat: Vec<usize> = batches.iter().flatten().map(|&i| lengths[i]).collect();
        assert!(flat.windows(2).all(|w| w[0] >= w[1]), "one mega-batch here: sorted longest first");
        assert_eq!(group_by_length(&lengths, 4, 3), batches, "seeded");
        // Equal lengths: the order is the seeded shuffle's.
        let same = vec![5; 20];
        assert_ne!(group_by_length(&same, 2, 4), group_by_length(&same, 2, 5));
    }

    #[test]
    fn collate_marks_the_positions_that_predict_targets() {
        let a = Example { prompt: vec![1, 2, 3], target: vec![4, 5], image: None };
        let b = Example { prompt: vec![1], target: vec![6], image: None };
        let batch = collate(&[&a, &b], 0, &Device::Cpu).unwrap();
        assert_eq!(batch.ids.to_vec2::<u32>().unwrap(), vec![vec![1, 2, 3, 4, 5], vec![1, 6, 0, 0, 0]]);
        assert_eq!(batch.rows, vec![2, 3, 5]);
        assert_eq!(batch.targets, vec![4, 5, 6]);
        assert_eq!(batch.seq_of, vec![0, 0, 1]);
    }
}
