//! The vision tower: a Qwen3-VL-style ViT without deepstack.
//!
//! Patches arrive flattened as `[N, C·T_p·P·P]` in 2×2-merge-block order (see [`processor`]). The patch embedding
//! is a matmul with the reshaped Conv3d kernel; a learned square position table is bilinearly resampled
//! (align-corners) to each image's grid; blocks are pre-LayerNorm attention (2-D rotary, full attention within each
//! frame) and GELU-tanh MLPs; the merger LayerNorms each patch, concatenates 2×2 blocks and projects them to the
//! text width with an exact-GELU MLP.

pub mod processor;
pub mod resize;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::VisionConfig;
use crate::error::{Error, Result};
use crate::ops::{layer_norm, matmul, softmax_last, Linear};
use crate::rope::{apply_vision_rope, vision_rope};

const LN_EPS: f64 = 1e-6;

#[derive(Debug, Clone)]
struct Block {
    norm1: (Tensor, Tensor),
    norm2: (Tensor, Tensor),
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
}

fn load_ln(vb: &VarBuilder, dim: usize) -> Result<(Tensor, Tensor)> {
    Ok((vb.get(dim, "weight")?, vb.get(dim, "bias")?))
}

/// The vision encoder and patch merger (`model.visual` in released checkpoints).
#[derive(Debug, Clone)]
pub struct VisionModel {
    patch_weight: Tensor,
    patch_bias: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    merger_norm: (Tensor, Tensor),
    merger_fc1: Linear,
    merger_fc2: Linear,
    cfg: VisionConfig,
    rope_theta: f64,
    /// Most attention scores (elements of `[images·heads, L, L]`) computed at once ([`ATTENTION_SCORES`] by default):
    /// consecutive same-size images attend together in groups under this bound.
    pub max_attention_scores: usize,
}

/// Per-patch `(row, col)` of an image grid `h × w`, in merge-block order, repeated for each of `t` frames.
pub fn merge_order_coords(t: usize, h: usize, w: usize, merge: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(t * h * w);
    for _ in 0..t {
        for br in 0..h / merge {
            for bc in 0..w / merge {
                for ir in 0..merge {
                    for ic in 0..merge {
                        out.push((br * merge + ir, bc * merge + ic));
                    }
                }
            }
        }
    }
    out
}

/// Bilinear (align-corners) taps of target index `i` on an axis of `size` into a `side`-long table.
fn axis_taps(i: usize, size: usize, side: usize) -> [(usize, f32); 2] {
    let src = i as f32 * (side - 1) as f32 / (size.max(2) - 1) as f32;
    let floor = src.floor();
    let f = floor as usize;
    let frac = src - floor;
    [(f.min(side - 1), 1.0 - frac), ((f + 1).min(side - 1), frac)]
}

impl VisionModel {
    pub fn load(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size;
        let pe = vb.pp("patch_embed").pp("proj");
        let patch_weight = pe
            .get((h, cfg.in_channels, cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size), "weight")?
            .reshape((h, patch_dim))?;
        let blocks = (0..cfg.depth)
            .map(|i| {
                let b = vb.pp(format!("blocks.{i}"));
                Ok(Block {
                    norm1: load_ln(&b.pp("norm1"), h)?,
                    norm2: load_ln(&b.pp("norm2"), h)?,
                    qkv: Linear::load(&b.pp("attn").pp("qkv"), h, 3 * h, true)?,
                    proj: Linear::load(&b.pp("attn").pp("proj"), h, h, true)?,
                    fc1: Linear::load(&b.pp("mlp").pp("linear_fc1"), h, cfg.intermediate_size, true)?,
                    fc2: Linear::load(&b.pp("mlp").pp("linear_fc2"), cfg.intermediate_size, h, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let merged = h * cfg.spatial_merge_size * cfg.spatial_merge_size;
        let m = vb.pp("merger");
        let rope_theta = cfg
            .extra
            .get("rope_parameters")
            .and_then(|r| r.get("rope_theta"))
            .and_then(|t| t.as_f64())
            .unwrap_or(10_000.0);
        Ok(Self {
            patch_weight,
            patch_bias: pe.get(h, "bias")?,
            pos_embed: vb.pp("pos_embed").get((cfg.num_position_embeddings, h), "weight")?,
            blocks,
            merger_norm: load_ln(&m.pp("norm"), h)?,
            merger_fc1: Linear::load(&m.pp("linear_fc1"), merged, merged, true)?,
            merger_fc2: Linear::load(&m.pp("linear_fc2"), merged, cfg.out_hidden_size, true)?,
            cfg: cfg.clone(),
            rope_theta,
            max_attention_scores: ATTENTION_SCORES,
        })
    }

    /// Bilinearly resampled position embeddings `[N, hidden]` for all patches of `grids`.
    fn position_embeddings(&self, grids: &[[usize; 3]], device: &Device) -> Result<Tensor> {
        let side = (self.cfg.num_position_embeddings as f64).sqrt().round() as usize;
        let mut idx = Vec::new();
        let mut wts = Vec::new();
        for &[t, h, w] in grids {
            for (r, c) in merge_order_coords(t, h, w, self.cfg.spatial_merge_size) {
                for (ri, rw) in axis_taps(r, h, side) {
                    for (ci, cw) in axis_taps(c, w, side) {
                        idx.push((ri * side + ci) as u32);
                        wts.push(rw * cw);
                    }
                }
            }
        }
        let n = idx.len() / 4;
        let idx = Tensor::from_vec(idx, n * 4, device)?;
        let wts = Tensor::from_vec(wts, (n, 4, 1), device)?.to_dtype(self.pos_embed.dtype())?;
        let rows = self.pos_embed.index_select(&idx, 0)?.reshape((n, 4, self.cfg.hidden_size))?;
        Ok(rows.broadcast_mul(&wts)?.sum(1)?)
    }

    /// Encodes patches `[N, C·T_p·P·P]` of images with grids `(t, h, w)` into merged tokens `[N/merge², out]`.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[[usize; 3]]) -> Result<Tensor> {
        let device = pixel_values.device();
        let merge = self.cfg.spatial_merge_size;
        let total: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
        if pixel_values.dim(0)? != total {
            return Err(Error::Input(format!(
                "pixel_values has {} patches but the grids {grids:?} need {total}",
                pixel_values.dim(0)?
            )));
        }
        if grids.iter().any(|g| g[1] % merge != 0 || g[2] % merge != 0 || g[0] == 0) {
            return Err(Error::Input(format!("image grids {grids:?} are not multiples of the merge size {merge}")));
        }
        let mut x = matmul(&pixel_values.to_dtype(self.patch_weight.dtype())?, &self.patch_weight.t()?)?;
        x = x.broadcast_add(&self.patch_bias)?;
        x = (x + self.position_embeddings(grids, device)?)?;
        let coords: Vec<(usize, usize)> =
            grids.iter().flat_map(|&[t, h, w]| merge_order_coords(t, h, w, merge)).collect();
        let head_dim = self.cfg.hidden_size / self.cfg.num_heads;
        let (cos, sin) = vision_rope(&coords, head_dim, self.rope_theta, device)?;
        // Attention runs within each frame of each image.
        let segments: Vec<usize> = grids.iter().flat_map(|&[t, h, w]| std::iter::repeat_n(h * w, t)).collect();
        for block in &self.blocks {
            let h = layer_norm(&x, &block.norm1.0, &block.norm1.1, LN_EPS)?;
            x = (x + self.attention(block, &h, &cos, &sin, &segments)?)?;
            let h = layer_norm(&x, &block.norm2.0, &block.norm2.1, LN_EPS)?;
            let h = block.fc2.forward(&block.fc1.forward(&h)?.gelu()?)?;
            x = (x + h)?;
        }
        let h = layer_norm(&x, &self.merger_norm.0, &self.merger_norm.1, LN_EPS)?;
        let h = h.reshape((total / (merge * merge), self.cfg.hidden_size * merge * merge))?;
        self.merger_fc2.forward(&self.merger_fc1.forward(&h)?.gelu_erf()?)
    }

    fn attention(&self, block: &Block, x: &Tensor, cos: &Tensor, sin: &Tensor, segments: &[usize]) -> Result<Tensor> {
        let n = x.dim(0)?;
        let heads = self.cfg.num_heads;
        let hd = self.cfg.hidden_size / heads;
        let qkv = block.qkv.forward(x)?.reshape((n, 3, heads, hd))?;
        let q = apply_vision_rope(&qkv.narrow(1, 0, 1)?.squeeze(1)?, cos, sin)?;
        let k = apply_vision_rope(&qkv.narrow(1, 1, 1)?.squeeze(1)?, cos, sin)?;
        let v = qkv.narrow(1, 2, 1)?.squeeze(1)?;
        let scale = (hd as f64).powf(-0.5);
        // Consecutive frames of one size attend together, up to `max_attention_scores` at a time: a batch of 64
        // same-size images is a handful of ops per layer per group instead of per image (on a GPU each op is a
        // kernel launch), and the score matrices of a group stay bounded however many images come.
        let mut outs = Vec::new();
        let mut start = 0;
        for (len, count) in attention_groups(segments, heads, self.max_attention_scores) {
            let rows = len * count;
            // [rows, heads, hd] → [count·heads, len, hd]
            let part = |t: &Tensor| -> Result<Tensor> {
                Ok(t.narrow(0, start, rows)?
                    .reshape((count, len, heads, hd))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((count * heads, len, hd))?)
            };
            let (qs, ks, vs) = (part(&q)?, part(&k)?, part(&v)?);
            let probs = softmax_last(&(matmul(&qs, &ks.t()?.contiguous()?)? * scale)?)?;
            let o = matmul(&probs, &vs)?.reshape((count, heads, len, hd))?.transpose(1, 2)?;
            outs.push(o.reshape((rows, heads * hd))?);
            start += rows;
        }
        let out = if outs.len() == 1 { outs.remove(0) } else { Tensor::cat(&outs, 0)? };
        block.proj.forward(&out)
    }
}

/// The default bound of [`VisionModel::max_attention_scores`]: 1 GiB of f32 scores.
pub const ATTENTION_SCORES: usize = 1 << 28;

/// The frames of `segments` (patch counts) grouped for attention as `(patches, frames)`: runs of one size, each
/// group with at most `max_scores` scores over `heads` heads (at least one frame).
fn attention_groups(segments: &[usize], heads: usize, max_scores: usize) -> Vec<(usize, usize)> {
    equal_runs(segments)
        .into_iter()
        .flat_map(|(len, count)| {
            let cap = (max_scores / (heads * len * len).max(1)).max(1);
            (0..count).step_by(cap).map(move |first| (len, cap.min(count - first)))
        })
        .collect()
}

/// Runs of equal values in `segments` as `(value, run length)`, in order.
fn equal_runs(segments: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &len in segments {
        match runs.last_mut() {
            Some((l, n)) if *l == len => *n += 1,
            _ => runs.push((len, 1)),
        }
    }
    runs
}

/// Number of merged tokens an image grid yields.
pub fn merged_tokens(grid: [usize; 3], merge: usize) -> usize {
    grid[0] * grid[1] * grid[2] / (merge * merge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_order_walks_blocks() {
        let c = merge_order_coords(1, 2, 4, 2);
        assert_eq!(c, vec![(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }

    #[test]
    fn equal_runs_group_consecutive_segments() {
        assert_eq!(equal_runs(&[4, 4, 4, 6, 4, 4]), vec![(4, 3), (6, 1), (4, 2)]);
        assert_eq!(equal_runs(&[]), vec![]);
        // Two heads of 4×4 scores per frame: 64 scores allow two frames per group; one frame always fits.
        assert_eq!(attention_groups(&[4, 4, 4, 4, 4, 6], 2, 64), vec![(4, 2), (4, 2), (4, 1), (6, 1)]);
        assert_eq!(attention_groups(&[4, 4], 2, 1), vec![(4, 1), (4, 1)]);
    }

    #[test]
    fn axis_taps_align_corners() {
        // 4 targets over an 8-entry table: sources 0, 7/3, 14/3, 7.
        let t = axis_taps(1, 4, 8);
        assert_eq!((t[0].0, t[1].0), (2, 3));
        assert!((t[1].1 - (7.0 / 3.0 - 2.0)).abs() < 1e-6);
        assert_eq!(axis_taps(3, 4, 8)[0], (7, 1.0));
    }
}
