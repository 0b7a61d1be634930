//! Rotary position embeddings: the text decoder's partial interleaved M-RoPE and the vision tower's 2-D rotary.
//!
//! Angles are computed on the host in f64 → f32 (they depend only on integer positions, so they carry no
//! gradient); applying them is a differentiable `x·cos + rotate_half(x)·sin`.

use candle_core::{Device, Tensor, D};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ops::rotate_half;

/// Three-axis (temporal, height, width) position ids for a batch: `ids[axis][b][t]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MropePositions {
    pub ids: [Vec<Vec<i64>>; 3],
}

impl MropePositions {
    /// Plain text positions `offset..offset+len` on all three axes for `batch` sequences.
    pub fn text(batch: usize, len: usize, offset: i64) -> Self {
        let row: Vec<i64> = (0..len as i64).map(|i| i + offset).collect();
        let rows = vec![row; batch];
        Self { ids: [rows.clone(), rows.clone(), rows] }
    }

    /// `(batch, len)`; errors when the three axes or the sequences disagree.
    pub fn dims(&self) -> Result<(usize, usize)> {
        let b = self.ids[0].len();
        let t = self.ids[0].first().map_or(0, Vec::len);
        for axis in &self.ids {
            if axis.len() != b || axis.iter().any(|r| r.len() != t) {
                return Err(Error::Input("M-RoPE position rows have different lengths".into()));
            }
        }
        Ok((b, t))
    }
}

/// Precomputed text rotary tables for one forward pass: `cos`/`sin` of shape `[B, T, rotary_dim]`.
#[derive(Debug, Clone)]
pub struct TextRope {
    pub cos: Tensor,
    pub sin: Tensor,
    /// The same tables on the host for the CPU kernel ([`crate::kernels::rope_tables`]), when on the CPU.
    host: Option<crate::kernels::RopeTables>,
    /// Half-width tables for candle-nn's rotary kernel (decoding on a GPU), made on first use.
    half: std::sync::OnceLock<(candle_core::DType, Tensor, Tensor)>,
}

impl TextRope {
    /// Builds the tables for `positions`. Frequency `j` of the rotary half reads the height axis when
    /// `j % 3 == 1 && j < 3·section[1]`, the width axis when `j % 3 == 2 && j < 3·section[2]`, else the temporal
    /// axis (the interleaved layout of Qwen3.5).
    pub fn new(cfg: &Config, positions: &MropePositions, device: &Device) -> Result<Self> {
        let (b, t) = positions.dims()?;
        let rot = cfg.rotary_dim();
        let half = rot / 2;
        let rp = &cfg.text_config.rope_parameters;
        let sec = &rp.mrope_section;
        let inv_freq: Vec<f32> =
            (0..half).map(|j| (1.0 / rp.rope_theta.powf((2 * j) as f64 / rot as f64)) as f32).collect();
        let axis_of = |j: usize| {
            if j % 3 == 1 && j < 3 * sec[1] {
                1
            } else if j % 3 == 2 && j < 3 * sec[2] {
                2
            } else {
                0
            }
        };
        let mut cos = Vec::with_capacity(b * t * rot);
        let mut sin = Vec::with_capacity(b * t * rot);
        for bi in 0..b {
            for ti in 0..t {
                let mut c = vec![0f32; rot];
                let mut s = vec![0f32; rot];
                for j in 0..half {
                    let p = positions.ids[axis_of(j)][bi][ti] as f32;
                    // torch computes the angle in f32: inv_freq (f32) · position (f32).
                    let angle = inv_freq[j] * p;
                    c[j] = angle.cos();
                    s[j] = angle.sin();
                    c[j + half] = c[j];
                    s[j + half] = s[j];
                }
                cos.extend_from_slice(&c);
                sin.extend_from_slice(&s);
            }
        }
        let host = if device.is_cpu() {
            let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
            Some(crate::kernels::RopeTables::new(wide(&cos), wide(&sin), (b, t, rot))?)
        } else {
            None
        };
        Ok(Self {
            cos: Tensor::from_vec(cos, (b, t, rot), device)?,
            sin: Tensor::from_vec(sin, (b, t, rot), device)?,
            host,
            half: std::sync::OnceLock::new(),
        })
    }

    /// Tables made elsewhere, `cos`/`sin` `[B, T, rotary_dim]` on `x`'s device: typically rows of
    /// [`TextRope::text_table`] picked on the device by a tensor of positions, so that a decode step captured in a
    /// CUDA graph reads its positions from device memory.
    pub fn from_tables(cos: Tensor, sin: Tensor) -> Self {
        Self { cos, sin, host: None, half: std::sync::OnceLock::new() }
    }

    /// The tables of text positions `0..n`, `[n, rotary_dim]` each: a text token at position `p` (its three
    /// M-RoPE axes equal) rotates by row `p`. The same values as [`TextRope::new`] gives such a token.
    pub fn text_table(cfg: &Config, n: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let rope = Self::new(cfg, &MropePositions::text(1, n, 0), device)?;
        Ok((rope.cos.squeeze(0)?, rope.sin.squeeze(0)?))
    }

    /// Rotates the first `rotary_dim` features of `x` `[B, H, T, D]`, leaving the rest unchanged.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(tables) = self.host.as_ref().filter(|_| crate::kernels::supported(x)) {
            // On the CPU: one node with its own backward (the tables are constants, kept as f64), for training and
            // for decoding, where the composition's ten small ops per call were a tenth of a tiny model's step.
            return crate::kernels::rope_tables(x, tables);
        }
        if !crate::ops::needs_grad(&[x]) && !x.device().is_cpu() {
            return self.apply_no_grad(x);
        }
        if x.device().is_cuda() && crate::kernels::trainable(x) {
            // Training on CUDA: one node, the tables left on the device (kernels::rope_on_device).
            return crate::kernels::rope_on_device(x, &self.cos, &self.sin);
        }
        self.apply_composed(x)
    }

    /// `x·cos + rotate_half(x)·sin` on the rotary part, from candle ops (differentiable on every device).
    fn apply_composed(&self, x: &Tensor) -> Result<Tensor> {
        let rot = self.cos.dim(D::Minus1)?;
        let d = x.dim(D::Minus1)?;
        let cos = self.cos.unsqueeze(1)?.to_dtype(x.dtype())?;
        let sin = self.sin.unsqueeze(1)?.to_dtype(x.dtype())?;
        let x_rot = x.narrow(D::Minus1, 0, rot)?;
        let rotated = (x_rot.broadcast_mul(&cos)? + rotate_half(&x_rot)?.broadcast_mul(&sin)?)?;
        if rot == d {
            return Ok(rotated);
        }
        let x_pass = x.narrow(D::Minus1, rot, d - rot)?;
        Ok(Tensor::cat(&[&rotated, &x_pass], D::Minus1)?)
    }

    /// The same rotation through candle-nn's fused rotary kernel (no backward): three ops per call instead of
    /// ~ten, which on a GPU are as many kernel launches. Its tables are the first halves of ours (the halves are
    /// equal), made once per forward pass in `x`'s dtype.
    fn apply_no_grad(&self, x: &Tensor) -> Result<Tensor> {
        let rot = self.cos.dim(D::Minus1)?;
        let d = x.dim(D::Minus1)?;
        let (cos, sin) = self.half_tables(x.dtype())?;
        let x_rot = if rot == d { x.contiguous()? } else { x.narrow(D::Minus1, 0, rot)?.contiguous()? };
        let rotated = candle_nn::rotary_emb::rope(&x_rot, &cos, &sin)?;
        if rot == d {
            return Ok(rotated);
        }
        Ok(Tensor::cat(&[&rotated, &x.narrow(D::Minus1, rot, d - rot)?], D::Minus1)?)
    }

    /// `[B, T, rot/2]` cos/sin in `dtype`, cached for the first dtype asked for.
    fn half_tables(&self, dtype: candle_core::DType) -> Result<(Tensor, Tensor)> {
        if let Some((_, c, s)) = self.half.get().filter(|(dt, ..)| *dt == dtype) {
            return Ok((c.clone(), s.clone()));
        }
        let half = self.cos.dim(D::Minus1)? / 2;
        let take = |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(D::Minus1, 0, half)?.to_dtype(dtype)?.contiguous()?) };
        let (c, s) = (take(&self.cos)?, take(&self.sin)?);
        let _ = self.half.set((dtype, c.clone(), s.clone())); // kept only when it is the first dtype asked for
        Ok((c, s))
    }
}

/// The vision tower's 2-D rotary tables `[N, head_dim]` for patches at `(row, col)`: the first quarter of the
/// head rotates with the row, the second with the column, mirrored in the second half.
pub fn vision_rope(
    rows_cols: &[(usize, usize)],
    head_dim: usize,
    theta: f64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let dim = head_dim / 2;
    let nf = dim / 2;
    let inv_freq: Vec<f32> = (0..nf).map(|j| (1.0 / theta.powf((2 * j) as f64 / dim as f64)) as f32).collect();
    let n = rows_cols.len();
    let mut cos = Vec::with_capacity(n * head_dim);
    let mut sin = Vec::with_capacity(n * head_dim);
    for &(r, c) in rows_cols {
        let mut row = Vec::with_capacity(dim);
        row.extend(inv_freq.iter().map(|f| f * r as f32));
        row.extend(inv_freq.iter().map(|f| f * c as f32));
        for _ in 0..2 {
            cos.extend(row.iter().map(|a| a.cos()));
            sin.extend(row.iter().map(|a| a.sin()));
        }
    }
    Ok((Tensor::from_vec(cos, (n, head_dim), device)?, Tensor::from_vec(sin, (n, head_dim), device)?))
}

/// Applies vision rotary tables `[N, D]` to `x` `[N, H, D]`.
pub fn apply_vision_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if x.device().is_cuda() && crate::ops::needs_grad(&[x]) && crate::kernels::trainable(x) {
        // Training on CUDA: the text kernel's node, each patch a batch row of one position.
        let y = crate::kernels::rope_on_device(&x.unsqueeze(2)?, &cos.unsqueeze(1)?, &sin.unsqueeze(1)?)?;
        return Ok(y.squeeze(2)?);
    }
    let cos = cos.unsqueeze(1)?.to_dtype(x.dtype())?;
    let sin = sin.unsqueeze(1)?.to_dtype(x.dtype())?;
    Ok((x.broadcast_mul(&cos)? + rotate_half(x)?.broadcast_mul(&sin)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions that differ between the batch rows and between the three axes (as after an image).
    fn positions(b: usize, t: usize) -> MropePositions {
        let axis = |k: i64| -> Vec<Vec<i64>> {
            (0..b as i64).map(|bi| (0..t as i64).map(|ti| 3 * ti + k * (ti % 4) + 5 * bi).collect()).collect()
        };
        MropePositions { ids: [axis(0), axis(1), axis(2)] }
    }

    #[test]
    fn candle_nn_rotary_kernel_equals_the_composed_rotation() {
        let cfg = Config::tiny();
        let (b, h, t, d) = (2, 3, 5, cfg.text_config.head_dim);
        assert!(cfg.rotary_dim() < d, "the check wants a pass-through tail");
        let rope = TextRope::new(&cfg, &positions(b, t), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (b, h, t, d), &Device::Cpu).unwrap();
        let fused = rope.apply_no_grad(&x).unwrap();
        let composed = rope.apply_composed(&x).unwrap();
        let diff: f32 =
            (&fused - &composed).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(diff < 1e-5, "rotations differ by {diff}");
        // The rotation moved something (the positions are not all zero) and kept the tail.
        let moved: f32 =
            (&composed - &x).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(moved > 1e-2);
        let r = cfg.rotary_dim();
        let tail = (composed.narrow(3, r, d - r).unwrap() - x.narrow(3, r, d - r).unwrap()).unwrap();
        assert_eq!(tail.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        // A second call reuses the cached half tables; another dtype makes its own.
        let again = rope.apply_no_grad(&x).unwrap();
        let d2: f32 = (again - &fused).unwrap().abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert_eq!(d2, 0.0);
        let x64 = x.to_dtype(candle_core::DType::F64).unwrap();
        let f64_out = rope.apply_no_grad(&x64).unwrap();
        assert_eq!(f64_out.dtype(), candle_core::DType::F64);
    }
}
