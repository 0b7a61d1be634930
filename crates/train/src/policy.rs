//! The trainable model: its weights as named variables, which of them train, the model built over them (the
//! frozen vision tower and merger built over detached copies, so backward never enters them), and checkpoints in
//! the Hugging Face layout.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use sgvlm_model::{checkpoint, Config, Qwen35};

use crate::error::{Result, TrainError};

/// What stays frozen (MS-SWIFT's `--freeze_vit`, `--freeze_aligner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Freeze {
    /// The vision tower (patch embedding, position embedding, blocks).
    pub vit: bool,
    /// The 2×2 merger that projects vision features into the text model.
    pub aligner: bool,
}

impl Default for Freeze {
    fn default() -> Self {
        Self { vit: true, aligner: true }
    }
}

impl Freeze {
    pub fn is_frozen(&self, name: &str) -> bool {
        match name.strip_prefix("model.visual.") {
            Some(rest) if rest.starts_with("merger.") => self.aligner,
            Some(_) => self.vit,
            None => false,
        }
    }
}

/// Weights, config and freezing of a model being trained.
pub struct Policy {
    pub config: Config,
    pub varmap: VarMap,
    pub freeze: Freeze,
    pub device: Device,
}

impl Policy {
    pub fn load(dir: &Path, freeze: Freeze, device: &Device) -> Result<Self> {
        let config = Config::from_json_file(&dir.join("config.json"))?;
        let varmap = checkpoint::load_varmap(dir, &config, device)?;
        Ok(Self { config, varmap, freeze, device: device.clone() })
    }

    /// A policy over in-memory tensors (random init, tests).
    pub fn from_tensors(
        config: Config,
        tensors: HashMap<String, Tensor>,
        freeze: Freeze,
        device: &Device,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| TrainError::Input("variable map lock poisoned".into()))?;
            for (k, v) in tensors {
                data.insert(k, Var::from_tensor(&v.to_dtype(DType::F32)?.to_device(device)?)?);
            }
        }
        Ok(Self { config, varmap, freeze, device: device.clone() })
    }

    /// The trainable variables, sorted by name (a stable order for the optimizer state).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| !self.freeze.is_frozen(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Current weights (shared storage with the variables).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    }

    /// The model over the variables; frozen vision parts read detached tensors (no gradient, no backward cost).
    pub fn model(&self) -> Result<Qwen35> {
        self.model_in(DType::F32, &self.frozen_tensors(DType::F32)?)
    }

    /// The frozen weights, detached, in `dtype`: views of the variables when the dtypes agree, else one copy
    /// (frozen weights never change, so a caller makes this once and passes it to every [`Policy::model_in`]).
    pub fn frozen_tensors(&self, dtype: DType) -> Result<HashMap<String, Tensor>> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        data.iter()
            .filter(|(k, _)| self.freeze.is_frozen(k))
            .map(|(k, v)| Ok((k.clone(), v.as_detached_tensor().to_dtype(dtype)?)))
            .collect()
    }

    /// The model computing in `dtype`: the trainable weights are the variables themselves (f32) or casts of them
    /// (candle's cast is differentiable, so gradients arrive in f32 on the variables), the frozen ones come from
    /// `frozen` ([`Policy::frozen_tensors`]). A cast is a copy: a model in another dtype than the variables' does
    /// not see the optimizer's later updates and is rebuilt once per step ([`crate::precision::TrainModel`]).
    pub fn model_in(&self, dtype: DType, frozen: &HashMap<String, Tensor>) -> Result<Qwen35> {
        let mut tensors = frozen.clone();
        tensors.extend(self.trainable().into_iter().map(|(k, v)| (k, v.as_tensor().clone())));
        Ok(Qwen35::from_tensors(&self.config, tensors, dtype, &self.device)?)
    }

    /// A frozen copy of the current weights in `dtype` (GRPO's reference model): deep copies, so later updates of
    /// the policy do not reach it, and no f32 copy is kept when `dtype` is narrower.
    pub fn frozen_model(&self, dtype: DType) -> Result<Qwen35> {
        let copies = {
            let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
            data.iter()
                .map(|(k, v)| {
                    let t = v.as_detached_tensor();
                    let t = if t.dtype() == dtype { t.copy()? } else { t.to_dtype(dtype)? };
                    Ok((k.clone(), t))
                })
                .collect::<Result<HashMap<String, Tensor>>>()?
        };
        Ok(Qwen35::from_tensors(&self.config, copies, dtype, &self.device)?)
    }

    /// Sets every variable to its value in the checkpoint at `dir` (one written by [`Policy::save`] for this
    /// configuration): how a run goes back to its best checkpoint. A variable missing there is an error.
    pub fn restore(&self, dir: &Path) -> Result<()> {
        let saved = checkpoint::load_varmap(dir, &self.config, &self.device)?;
        let saved = saved.data().lock().unwrap_or_else(|e| e.into_inner());
        let tensors: HashMap<String, Tensor> = saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        self.assign(&tensors).map_err(|e| match e {
            TrainError::Input(m) => TrainError::Input(format!("`{}`: {m}", dir.display())),
            other => other,
        })
    }

    /// Sets every variable to its tensor in `tensors` (in place: models and engines over the variables see the new
    /// values). A variable without a tensor there is an error.
    pub fn assign(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in data.iter() {
            let t = tensors.get(k).ok_or_else(|| TrainError::Input(format!("no tensor `{k}`")))?;
            v.set(&t.to_dtype(v.dtype())?.to_device(v.device())?)?;
        }
        Ok(())
    }

    /// Writes a Hugging Face model directory: `config.json`, `model.safetensors` in `dtype` (f32 keeps resume
    /// exact), `generation_config.json`, `preprocessor_config.json`, and the tokenizer files of `tokenizer_from`.
    pub fn save(&self, dir: &Path, dtype: DType, pixels: (usize, usize), tokenizer_from: Option<&Path>) -> Result<()> {
        checkpoint::save(dir, &self.config, &self.tensors(), dtype)?;
        checkpoint::write_companion_files(dir, &self.config, pixels.0, pixels.1)?;
        if let Some(src) = tokenizer_from {
            for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
                let from = src.join(name);
                if from.exists() {
                    std::fs::copy(&from, dir.join(name)).map_err(TrainError::io(&from))?;
                }
            }
        }
        Ok(())
    }
}

/// The tiny preset at random weights with the default freezing (tests).
#[cfg(test)]
pub(crate) fn tiny_random() -> Policy {
    let cfg = Config::tiny();
    let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu).expect("random weights");
    Policy::from_tensors(cfg, weights, Freeze::default(), &Device::Cpu).expect("tiny policy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezing_selects_vision_tower_and_merger_separately() {
        let f = Freeze { vit: true, aligner: false };
        assert!(f.is_frozen("model.visual.blocks.0.attn.qkv.weight"));
        assert!(!f.is_frozen("model.visual.merger.linear_fc1.weight"));
        assert!(!f.is_frozen("model.language_model.norm.weight"));
        let p = tiny_random();
        let names: Vec<String> = p.trainable().into_iter().map(|(n, _)| n).collect();
        assert!(names.iter().all(|n| !n.starts_with("model.visual.")));
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn restore_brings_back_every_saved_value() {
        let p = tiny_random();
        let dir = tempfile::tempdir().unwrap();
        p.save(dir.path(), DType::F32, (1024, 4096), None).unwrap();
        // Deep copies: the variables are updated in place, and `tensors` shares their storage.
        let before: HashMap<String, Tensor> = p.tensors().into_iter().map(|(k, t)| (k, t.copy().unwrap())).collect();
        for (_, v) in p.trainable() {
            v.set(&(v.as_tensor() + 1.0).unwrap()).unwrap();
        }
        let key = "model.language_model.norm.weight";
        assert_ne!(p.tensors()[key].to_vec1::<f32>().unwrap(), before[key].to_vec1::<f32>().unwrap());
        p.restore(dir.path()).unwrap();
        for (k, t) in p.tensors() {
            let diff = (t - &before[&k]).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{k}");
        }
        assert!(p.restore(&dir.path().join("missing")).is_err());
    }
}
