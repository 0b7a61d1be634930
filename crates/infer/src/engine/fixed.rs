//! Fixed-shape decode steps, and their capture as CUDA graphs.
//!
//! The eager step (`Engine::decode_step`) attends over exactly the keys held and builds its rotary tables and key
//! mask on the host, so its shapes and uploads change every step. A fixed-shape step
//! ([`TextModel::decode_static`](sgvlm_model::text::TextModel::decode_static)) reads everything that changes —
//! the token ids, each row's position and the KV slot being written — from one small device buffer written
//! before the step, looks its rotary rows up in a device table, attends over the KV buffers' whole capacity under
//! a mask made on the device, updates the Gated DeltaNet states in place and leaves its logits in a buffer of
//! its own. Its kernels and their addresses are then the same at every step of a batch, which is what a CUDA
//! graph records: in [`DecodeMode::Graph`] the first step of a batch runs op by op (the warm-up candle's upload
//! cache needs, `sgvlm_model::cuda`), the second is captured and every later one is a single graph launch.
//! Whenever the batch changes the state here is rebuilt and, with graphs, captured again. So that this happens once
//! per wave of requests rather than at every finish, a finished row stays in the batch, frozen (same input, same
//! position; its outputs ignored), until at most half of the batch is still decoding and requests are queued, or a
//! queued request has waited `EngineConfig::refill_wait_steps` steps: then the finished rows leave and queued
//! requests join together (`Engine::run_seqs`; `Timings::fixed_builds` counts the rebuilds). On the CPU the fixed-shape step runs op by op ([`DecodeMode::Fixed`]); tests hold it to the eager
//! step's tokens.

use candle_core::{Device, Tensor};
use sgvlm_model::cuda::{self, StepGraph};
use sgvlm_model::rope::TextRope;
use sgvlm_model::text::attention::StaticStep;
use sgvlm_model::text::TextCache;
use sgvlm_model::Qwen35;

type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How the engine runs decode steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeMode {
    /// CUDA graphs on a CUDA device (in a build with the `cuda` feature), eager steps elsewhere; the
    /// environment variable `SGVLM_DECODE` overrides it.
    #[default]
    Auto,
    /// Op by op, attending over exactly the keys held (the reference path).
    Eager,
    /// Fixed-shape steps, op by op (what a graph records; on the CPU, to test it against `Eager`).
    Fixed,
    /// Fixed-shape steps captured once per batch as a CUDA graph and replayed (CUDA only).
    Graph,
}

impl DecodeMode {
    /// Parses `auto`, `eager`, `fixed` or `graph`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "eager" => Ok(Self::Eager),
            "fixed" => Ok(Self::Fixed),
            "graph" => Ok(Self::Graph),
            other => Err(format!("unknown decode mode {other:?} (expected auto, eager, fixed or graph)")),
        }
    }

    /// The mode used on `device`: `Auto` takes `SGVLM_DECODE` (`eager`, `fixed` or `graph`) when set, else
    /// graphs on CUDA and eager steps elsewhere; `Graph` off CUDA runs the same fixed-shape steps without a graph.
    pub fn on(self, device: &Device) -> Self {
        let cuda = device.is_cuda() && cfg!(feature = "cuda");
        let chosen = match self {
            Self::Auto => Self::from_env(),
            other => other,
        };
        match chosen {
            Self::Auto if cuda => Self::Graph,
            Self::Auto => Self::Eager,
            Self::Graph if !cuda => Self::Fixed,
            other => other,
        }
    }

    /// `SGVLM_DECODE`, read once (`Auto` when unset or not a mode).
    fn from_env() -> Self {
        static MODE: std::sync::OnceLock<DecodeMode> = std::sync::OnceLock::new();
        *MODE.get_or_init(|| std::env::var("SGVLM_DECODE").ok().and_then(|v| Self::parse(&v).ok()).unwrap_or_default())
    }
}

/// Fixed-shape decoding state for one batch (see the module doc).
pub(super) struct Fixed {
    /// The [`super::batch::Batch::generation`] this state was built for.
    pub generation: u64,
    rows: usize,
    /// u32 `[2B + 1]`: the rows' pending token ids, their positions, then the KV slot this step writes.
    inputs: Tensor,
    /// u32 `[B]`: each row's leading padding slots.
    left_pad: Tensor,
    /// u32 `[capacity]`: `0..capacity`.
    slots: Tensor,
    /// Rotary tables `[positions, rotary_dim]`.
    cos: Tensor,
    sin: Tensor,
    /// Where every step leaves its logits `[B, vocab]` (made by the first step).
    logits: Option<Tensor>,
    graph: Option<StepGraph>,
    /// Whether a warm-up step ran (graph mode).
    warm: bool,
    /// Why capturing failed, if it did: the batch then runs op by op.
    pub capture_error: Option<String>,
    /// KV slots and rotary positions the buffers hold.
    capacity: usize,
    positions: usize,
}

impl Fixed {
    /// Readies `cache` (its states moved to buffers of their own) for `rows` sequences whose KV rows start after
    /// `left_pad` slots, positions below `positions`.
    pub fn new(
        model: &Qwen35,
        cache: &mut TextCache,
        generation: u64,
        left_pad: &[usize],
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let capacity = cache.fix_for_static().map_err(err)?;
        if capacity == 0 {
            return Err("fixed-shape decoding needs full-attention layers with KV room".into());
        }
        let rows = left_pad.len();
        let (cos, sin) = TextRope::text_table(&model.config, positions, device).map_err(err)?;
        let pads: Vec<u32> = left_pad.iter().map(|&p| p as u32).collect();
        Ok(Self {
            generation,
            rows,
            inputs: Tensor::zeros(2 * rows + 1, candle_core::DType::U32, device).map_err(err)?,
            left_pad: Tensor::from_vec(pads, rows, device).map_err(err)?,
            slots: Tensor::arange(0u32, capacity as u32, device).map_err(err)?,
            cos,
            sin,
            logits: None,
            graph: None,
            warm: false,
            capture_error: None,
            capacity,
            positions,
        })
    }

    /// Writes the step's inputs: each row's `(pending token, position)` and the KV slot.
    pub fn set_inputs(&self, rows: &[(u32, i64)], slot: usize, device: &Device) -> Result<()> {
        if rows.len() != self.rows {
            return Err(format!("internal: {} rows for a fixed-shape batch of {}", rows.len(), self.rows));
        }
        if slot >= self.capacity {
            return Err(format!("internal: KV slot {slot} beyond the buffers' {} slots", self.capacity));
        }
        let mut host: Vec<u32> = rows.iter().map(|r| r.0).collect();
        for &(_, pos) in rows {
            if pos < 0 || pos as usize >= self.positions {
                return Err(format!("internal: position {pos} outside the rotary table's {}", self.positions));
            }
            host.push(pos as u32);
        }
        host.push(slot as u32);
        let n = host.len();
        self.inputs.slice_set(&Tensor::from_vec(host, n, device).map_err(err)?, 0, 0).map_err(err)
    }

    /// The logits the last step left.
    pub fn logits(&self) -> Result<&Tensor> {
        self.logits.as_ref().ok_or_else(|| "internal: no fixed-shape step ran".into())
    }

    /// Runs one step in `mode` (`Fixed` or `Graph`): op by op, or as the batch's graph (warming up and capturing
    /// it on the first two steps). A failed capture is kept in `capture_error` and the batch goes on op by op.
    /// Returns whether the step was a graph launch.
    pub fn step(&mut self, model: &Qwen35, cache: &TextCache, mode: DecodeMode, device: &Device) -> Result<bool> {
        if mode != DecodeMode::Graph || self.capture_error.is_some() {
            return self.run(model, cache).map(|_| false);
        }
        if let Some(g) = &self.graph {
            return g.launch().map(|_| true).map_err(err);
        }
        if !self.warm {
            cuda::with_upload_cache(device, || self.run(model, cache))?;
            self.warm = true;
            return Ok(false);
        }
        let captured = {
            let this = &*self;
            cuda::capture(device, || this.write_step(model, cache).map_err(sgvlm_model::Error::Input))
        };
        match captured {
            Ok(g) => {
                g.launch().map_err(err)?;
                self.graph = Some(g);
                Ok(true)
            }
            Err(e) => {
                // Reported in the engine's timings; the batch goes on op by op.
                self.capture_error = Some(e.to_string());
                self.run(model, cache).map(|_| false)
            }
        }
    }

    /// One step op by op; the first one makes the logits buffer.
    fn run(&mut self, model: &Qwen35, cache: &TextCache) -> Result<()> {
        if self.logits.is_some() {
            return self.write_step(model, cache);
        }
        self.logits = Some(self.forward(model, cache)?);
        Ok(())
    }

    /// One step that writes its logits into the existing buffer (what a graph records).
    fn write_step(&self, model: &Qwen35, cache: &TextCache) -> Result<()> {
        let buf = self.logits()?;
        let logits = self.forward(model, cache)?;
        buf.slice_set(&logits, 0, 0).map_err(err)
    }

    /// The step's forward: inputs from [`Fixed::inputs`], logits `[B, vocab]` out.
    fn forward(&self, model: &Qwen35, cache: &TextCache) -> Result<Tensor> {
        let b = self.rows;
        let c = |e: candle_core::Error| e.to_string();
        let ids = self.inputs.narrow(0, 0, b).and_then(|t| t.reshape((b, 1))).map_err(c)?;
        let pos = self.inputs.narrow(0, b, b).map_err(c)?;
        let slot = self.inputs.narrow(0, 2 * b, 1).map_err(c)?;
        let table = |t: &Tensor| t.index_select(&pos, 0).and_then(|r| r.unsqueeze(1)).map_err(c);
        let rope = TextRope::from_tables(table(&self.cos)?, table(&self.sin)?);
        let tc = model.text.text_config();
        let step =
            StaticStep::new(&slot, &self.left_pad, &self.slots, tc.num_key_value_heads, tc.head_dim).map_err(err)?;
        let embeds = model.text.embed(&ids).map_err(err)?;
        let hidden = model.text.decode_static(&embeds, &rope, cache, &step).map_err(err)?;
        model.lm_head.forward(&hidden.squeeze(1).map_err(c)?).map_err(err)
    }
}
