//! Mixed precision for training: f32 master weights, the forward and backward pass in a compute dtype.
//!
//! candle has no autocast, so the model a step runs is built over the master variables *cast* to the compute
//! dtype ([`Policy::model_in`]). The cast is an ordinary differentiable op: backward converts each weight's bf16
//! gradient back to f32 on its variable, so the optimizer, gradient clipping, checkpoints and exact resume stay as
//! they are in f32. A cast is a copy, so a bf16 model does not see the optimizer's in-place updates: it is rebuilt
//! once per optimizer step ([`TrainModel::for_step`]) and shared by that step's micro-batches. Frozen weights
//! (the vision tower and merger as the recipes freeze them) are cast once per run and reused.
//!
//! The numerically sensitive parts run in f32 whatever the weights' dtype, as transformers does under bf16: RMS
//! and layer norm statistics, softmax, the Gated DeltaNet decay and the chunked delta rule (`sgvlm_model::ops::
//! compute_dtype`), and the LM head's log-sum-exp and gradients ([`crate::loss`]).

use std::collections::HashMap;
use std::str::FromStr;

use candle_core::{DType, Tensor};
use sgvlm_model::Qwen35;

use crate::error::{Result, TrainError};
use crate::policy::Policy;

/// The dtype of the training forward and backward pass (the weights the optimizer updates stay f32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    /// Everything in f32 (bit-identical to training without this option).
    #[default]
    F32,
    /// Weights and activations in bf16, the sensitive reductions in f32.
    Bf16,
}

impl ComputeDtype {
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }
}

impl FromStr for ComputeDtype {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(TrainError::Input(format!("compute dtype `{other}`: use f32 or bf16"))),
        }
    }
}

/// The model the training steps run, kept current with the policy's variables.
pub struct TrainModel {
    dtype: DType,
    frozen: HashMap<String, Tensor>,
    delta_chunk: Option<usize>,
    model: Qwen35,
    /// The weights may have changed since `model` was cast from them.
    stale: bool,
}

impl TrainModel {
    /// Builds the model of `policy` in `dtype`; `delta_chunk` overrides the delta rule's chunk length.
    pub fn new(policy: &Policy, dtype: ComputeDtype, delta_chunk: Option<usize>) -> Result<Self> {
        let dtype = dtype.dtype();
        let frozen = policy.frozen_tensors(dtype)?;
        let model = build(policy, dtype, &frozen, delta_chunk)?;
        Ok(Self { dtype, frozen, delta_chunk, model, stale: false })
    }

    /// The model for an optimizer step, which will update the weights after it. In f32 the model reads the
    /// variables themselves (the master weights are f32), which the optimizer updates in place, so it is built
    /// once; in another dtype the casts are made again when an update may have happened since the last ones.
    pub fn for_step(&mut self, policy: &Policy) -> Result<&Qwen35> {
        self.refresh(policy)?;
        self.stale = self.dtype != DType::F32;
        Ok(&self.model)
    }

    /// The model over the current weights, when no update follows (validation between steps).
    pub fn current(&mut self, policy: &Policy) -> Result<&Qwen35> {
        self.refresh(policy)?;
        Ok(&self.model)
    }

    /// The model as last built.
    pub fn model(&self) -> &Qwen35 {
        &self.model
    }

    fn refresh(&mut self, policy: &Policy) -> Result<()> {
        if self.stale {
            self.model = build(policy, self.dtype, &self.frozen, self.delta_chunk)?;
            self.stale = false;
        }
        Ok(())
    }
}

fn build(policy: &Policy, dtype: DType, frozen: &HashMap<String, Tensor>, chunk: Option<usize>) -> Result<Qwen35> {
    let mut model = policy.model_in(dtype, frozen)?;
    if let Some(c) = chunk {
        model.text.chunk = c.max(1);
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Freeze;
    use candle_core::Device;
    use sgvlm_model::{checkpoint, Config};

    fn policy() -> Policy {
        let cfg = Config::tiny();
        let w = checkpoint::random_weights(&cfg, 0, &Device::Cpu).unwrap();
        Policy::from_tensors(cfg, w, Freeze::default(), &Device::Cpu).unwrap()
    }

    #[test]
    fn parses_the_config_and_cli_spellings() {
        assert_eq!("bf16".parse::<ComputeDtype>().unwrap(), ComputeDtype::Bf16);
        assert_eq!("f32".parse::<ComputeDtype>().unwrap().dtype(), DType::F32);
        assert!("fp16".parse::<ComputeDtype>().is_err());
    }

    #[test]
    fn bf16_model_casts_trainable_weights_differentiably_and_holds_frozen_ones_detached() {
        let p = policy();
        let tm = TrainModel::new(&p, ComputeDtype::Bf16, None).unwrap();
        let m = tm.model();
        assert_eq!(m.lm_head.weight.dtype(), DType::BF16);
        assert!(m.lm_head.weight.track_op(), "a cast of a variable: gradients flow back to it");
        assert!(tm.frozen.values().all(|t| t.dtype() == DType::BF16 && !t.track_op()));
        assert!(!tm.frozen.is_empty() && tm.frozen.keys().all(|k| k.starts_with("model.visual.")));
    }

    #[test]
    fn a_bf16_model_is_rebuilt_from_the_updated_weights() {
        let p = policy();
        let mut tm = TrainModel::new(&p, ComputeDtype::Bf16, Some(4)).unwrap();
        let name = "model.language_model.embed_tokens.weight";
        let var = p.trainable().into_iter().find(|(k, _)| k == name).unwrap().1;
        let sum = |t: &Tensor| t.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let old = sum(&tm.for_step(&p).unwrap().text.embed_tokens);
        var.set(&(var.as_tensor() + 1.0).unwrap()).unwrap();
        assert_eq!(sum(&tm.model().text.embed_tokens), old, "a cast is a copy: the built model missed the update");
        let m = tm.current(&p).unwrap();
        assert_eq!(m.text.chunk, 4);
        let (got, want) = (sum(&m.text.embed_tokens), sum(var.as_tensor()));
        assert!((got - want).abs() < 1e-2 * want.abs(), "rebuilt model sums to {got}, the weights to {want}");
    }
}
