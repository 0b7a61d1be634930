//! AdamW with decoupled weight decay over named variables, the warmup + cosine schedule, global-norm clipping, and
//! the optimizer state as safetensors (`m.<name>`, `v.<name>`, `step`), so a resumed run continues bit-exactly.
//!
//! Hand-written rather than `candle_nn::AdamW` because that optimizer's moments are private: they could not be saved.
//! Weight decay skips one-dimensional tensors (norm weights, biases, `A_log`, `dt_bias`), as transformers' trainer
//! does for biases and norms. Each parameter's update is two in-place passes ([`sgvlm_model::kernels::adamw_update`],
//! on CUDA two kernels of ours) over its moments, kept together as one `[2, ..]` buffer, instead of some fifteen
//! candle ops with a fresh buffer each; the clipping factor is applied inside them ([`AdamW::update_scaled`]), and
//! the global norm costs one device synchronisation ([`global_norm`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use sgvlm_model::kernels::{adamw_update, AdamWStep};

use crate::error::{Result, TrainError};

/// AdamW settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 }
    }
}

/// AdamW over a fixed, ordered list of named variables.
pub struct AdamW {
    pub cfg: AdamWConfig,
    pub params: Vec<(String, Var)>,
    /// Per parameter `[2, ..its dims]`: the first moment, then the second.
    moments: Vec<Tensor>,
    /// Per-parameter multiplier of the step's learning rate (1 unless [`AdamW::scale_lr`] set it).
    lr_scale: Vec<f64>,
    /// Updates applied so far.
    pub step: u64,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let moments = params
            .iter()
            .map(|(_, p)| Tensor::zeros(moments_dims(p), p.dtype(), p.device()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let lr_scale = vec![1.0; params.len()];
        Ok(Self { cfg, params, moments, lr_scale, step: 0 })
    }

    /// Multiplies the learning rate (and so the decoupled weight decay) of every parameter whose name starts with
    /// `prefix` by `scale`: a parameter group with its own learning rate. Returns how many parameters it reached.
    pub fn scale_lr(&mut self, prefix: &str, scale: f64) -> usize {
        let mut n = 0;
        for ((name, _), s) in self.params.iter().zip(self.lr_scale.iter_mut()) {
            if name.starts_with(prefix) {
                *s = scale;
                n += 1;
            }
        }
        n
    }

    /// One update with gradients `grads[i]` for `params[i]` at learning rate `lr`.
    pub fn update(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.update_scaled(grads, lr, 1.0)
    }

    /// [`AdamW::update`] with every gradient multiplied by `grad_scale` first (global-norm clipping: [`clip_factor`]).
    pub fn update_scaled(&mut self, grads: &[Tensor], lr: f64, grad_scale: f64) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(TrainError::Input(format!(
                "AdamW: {} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        self.step += 1;
        let c = self.cfg;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let lr = lr * self.lr_scale[i];
            let keep = if p.rank() > 1 && c.weight_decay > 0.0 { 1.0 - lr * c.weight_decay } else { 1.0 };
            let step = AdamWStep::new(c.beta1, c.beta2, c.eps, self.step, lr, keep, grad_scale);
            adamw_update(p.as_tensor(), &self.moments[i], &grads[i], &step)?;
        }
        Ok(())
    }

    /// Writes the moments and step count.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            map.insert(format!("m.{name}"), self.moments[i].get(0)?);
            map.insert(format!("v.{name}"), self.moments[i].get(1)?);
        }
        map.insert("step".into(), Tensor::new(&[self.step as f64], &Device::Cpu)?);
        candle_core::safetensors::save(&map, path)
            .map_err(|e| TrainError::Input(format!("failed to write {}: {e}", path.display())))
    }

    /// Restores the moments and step count written by [`AdamW::save`]; every parameter must be present.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let map = candle_core::safetensors::load(path, device)
            .map_err(|e| TrainError::Input(format!("failed to read optimizer state {}: {e}", path.display())))?;
        for (i, (name, p)) in self.params.iter().enumerate() {
            let mut both = Vec::with_capacity(2);
            for slot in ["m", "v"] {
                let key = format!("{slot}.{name}");
                let t = map
                    .get(&key)
                    .ok_or_else(|| TrainError::Input(format!("optimizer state {} has no `{key}`", path.display())))?;
                if t.dims() != p.dims() {
                    return Err(TrainError::Input(format!(
                        "optimizer state {}: `{key}` has shape {:?}, the parameter {:?}",
                        path.display(),
                        t.dims(),
                        p.dims()
                    )));
                }
                both.push(t.to_dtype(p.dtype())?);
            }
            // A buffer of its own (the update writes it in place).
            self.moments[i] = Tensor::stack(&both, 0)?.contiguous()?;
        }
        let step = map.get("step").ok_or_else(|| TrainError::Input(format!("{} has no `step`", path.display())))?;
        self.step = step.to_vec1::<f64>()?[0] as u64;
        Ok(())
    }
}

/// Linear warmup to `peak` over `warmup` steps, then cosine decay to 0 at `total` (transformers'
/// `get_cosine_schedule_with_warmup`). `step` counts from 0.
pub fn lr_at(step: u64, peak: f64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        return peak * (step as f64 + 1.0) / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Gradients summed over the backward passes of one optimizer step (micro-batches, vocabulary chunks): one slot
/// per parameter of an [`AdamW`], in its order.
#[derive(Debug)]
pub struct GradAccumulator(Vec<Option<Tensor>>);

impl GradAccumulator {
    pub fn new(opt: &AdamW) -> Self {
        Self(vec![None; opt.params.len()])
    }

    /// Adds one backward pass's gradients of the optimizer's parameters.
    pub fn add(&mut self, opt: &AdamW, grads: &candle_core::backprop::GradStore) -> Result<()> {
        for (slot, (_, var)) in self.0.iter_mut().zip(opt.params.iter()) {
            if let Some(g) = grads.get(var.as_tensor()) {
                *slot = Some(match slot.take() {
                    Some(a) => (a + g)?,
                    None => g.clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds the sums of another accumulator of the same optimizer.
    pub fn merge(&mut self, other: GradAccumulator) -> Result<()> {
        for (slot, g) in self.0.iter_mut().zip(other.0) {
            if let Some(g) = g {
                *slot = Some(match slot.take() {
                    Some(a) => (a + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// The sums, with zeros for parameters no pass reached.
    pub fn finish(self, opt: &AdamW) -> Result<Vec<Tensor>> {
        Ok(self
            .0
            .into_iter()
            .zip(opt.params.iter())
            .map(|(g, (_, v))| g.map_or_else(|| v.zeros_like(), Ok))
            .collect::<candle_core::Result<_>>()?)
    }
}

/// `[2, ..p's dims]`: the moments buffer of a parameter.
fn moments_dims(p: &Var) -> Vec<usize> {
    std::iter::once(2).chain(p.dims().iter().copied()).collect()
}

/// The global L2 norm of `grads`, with one device synchronisation (each tensor's sum of squares stays on the
/// device until all are read back together; summed in f64 in order).
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    if grads.is_empty() {
        return Ok(0.0);
    }
    let sums =
        grads.iter().map(|g| g.sqr()?.sum_all()?.to_dtype(DType::F64)).collect::<candle_core::Result<Vec<_>>>()?;
    let sums: Vec<f64> = Tensor::stack(&sums, 0)?.to_vec1()?;
    Ok(sums.iter().fold(0f64, |a, &x| a + x).sqrt())
}

/// What gradients of global norm `norm` are multiplied by so that it is at most `max_norm` (1 when it already is,
/// or when `max_norm` is not positive).
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm`; returns the norm before clipping. (The trainers
/// pass [`clip_factor`] to [`AdamW::update_scaled`] instead of scaling copies.)
pub fn clip_global_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    let s = clip_factor(norm, max_norm);
    if s != 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * s)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((lr_at(0, 1.0, 4, 20) - 0.25).abs() < 1e-12);
        assert!((lr_at(3, 1.0, 4, 20) - 1.0).abs() < 1e-12);
        assert!((lr_at(4, 1.0, 4, 20) - 1.0).abs() < 1e-12);
        assert!((lr_at(12, 1.0, 4, 20) - 0.5).abs() < 1e-12);
        assert!(lr_at(20, 1.0, 4, 20).abs() < 1e-12);
    }

    #[test]
    fn adamw_first_step_moves_by_lr_times_sign_and_decays_matrices_only() {
        let w = Var::from_tensor(&Tensor::new(&[[1f32, -2.0]], &Device::Cpu).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[3f32], &Device::Cpu).unwrap()).unwrap();
        let mut opt =
            AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], AdamWConfig::default()).unwrap();
        let gw = Tensor::new(&[[0.5f32, -4.0]], &Device::Cpu).unwrap();
        let gb = Tensor::new(&[2f32], &Device::Cpu).unwrap();
        opt.update(&[gw, gb], 0.1).unwrap();
        // m̂/√v̂ = sign(g) on the first step; decay multiplies the matrix by 1 − 0.1·0.1.
        let got: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert!((got[0] - (0.99 - 0.1)).abs() < 1e-6 && (got[1] - (-1.98 + 0.1)).abs() < 1e-6, "{got:?}");
        let got: Vec<f32> = b.as_tensor().to_vec1().unwrap();
        assert!((got[0] - 2.9).abs() < 1e-6);
    }

    #[test]
    fn a_scaled_group_moves_by_its_own_learning_rate() {
        let a = Var::from_tensor(&Tensor::new(&[1f32], &Device::Cpu).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[1f32], &Device::Cpu).unwrap()).unwrap();
        let params = vec![("model.visual.x".into(), a.clone()), ("model.language_model.y".into(), b.clone())];
        let mut opt = AdamW::new(params, AdamWConfig::default()).unwrap();
        assert_eq!(opt.scale_lr("model.visual.", 3.0), 1);
        let g = Tensor::new(&[1f32], &Device::Cpu).unwrap();
        opt.update(&[g.clone(), g], 0.1).unwrap();
        let moved = |v: &Var| 1.0 - v.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((moved(&a) - 0.3).abs() < 1e-6 && (moved(&b) - 0.1).abs() < 1e-6, "{} {}", moved(&a), moved(&b));
    }

    #[test]
    fn a_scaled_update_equals_the_update_of_scaled_gradients_and_survives_save_and_load() {
        let dev = Device::Cpu;
        let fresh = || {
            let w = Var::from_tensor(&Tensor::new(&[[1f32, -2.0], [0.5, 0.25]], &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::new(&[3f32, -1.0], &dev).unwrap()).unwrap();
            let opt = AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], AdamWConfig::default());
            (w, b, opt.unwrap())
        };
        let grads = |k: f32| {
            vec![
                Tensor::new(&[[0.5f32 * k, -4.0], [0.1, 2.0 * k]], &dev).unwrap(),
                Tensor::new(&[2f32, -0.3 * k], &dev).unwrap(),
            ]
        };
        let (w1, b1, mut scaled) = fresh();
        let (w2, b2, mut copied) = fresh();
        let dir = std::env::temp_dir().join(format!("sgvlm-optim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for step in 0..3 {
            let g = grads(1.0 + step as f32);
            let norm = global_norm(&g).unwrap();
            let s = clip_factor(norm, 1.0);
            assert!(s < 1.0, "the gradients are clipped");
            scaled.update_scaled(&g, 0.1, s).unwrap();
            let mut g2 = g.clone();
            assert_eq!(clip_global_norm(&mut g2, 1.0).unwrap(), norm);
            copied.update(&g2, 0.1).unwrap();
            if step == 1 {
                // The second optimizer goes on from its saved state in a new optimizer.
                copied.save(&dir.join("opt.safetensors")).unwrap();
                let params = vec![("w".into(), w2.clone()), ("b".into(), b2.clone())];
                copied = AdamW::new(params, AdamWConfig::default()).unwrap();
                copied.load(&dir.join("opt.safetensors"), &dev).unwrap();
                assert_eq!(copied.step, 2);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        for (a, b) in [(&w1, &w2), (&b1, &b2)] {
            let (a, b): (Vec<f32>, Vec<f32>) =
                (a.flatten_all().unwrap().to_vec1().unwrap(), b.flatten_all().unwrap().to_vec1().unwrap());
            assert_eq!(a, b, "to the last bit");
        }
        assert!(w1.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0] != 1.0);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![Tensor::new(&[3f32, 4.0], &Device::Cpu).unwrap()];
        let n = clip_global_norm(&mut g, 1.0).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        let v: Vec<f32> = g[0].to_vec1().unwrap();
        assert!((v[0] - 0.6).abs() < 1e-5 && (v[1] - 0.8).abs() < 1e-5);
    }
}
