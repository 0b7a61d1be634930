//! The running batch's decoding state: every layer's state stacked along the batch axis.
//!
//! Sequences are prefilled separately (or in groups of equal length), so their KV caches have different lengths.
//! The batch keeps one KV tensor per full-attention layer, `[B, H_kv, L, d]`, each sequence's keys right-aligned
//! (left-padded with zeros) so that one-token decode steps append at the same slot for everyone; an additive key
//! mask hides each row's `left_pad[b]` leading slots. Gated DeltaNet state has no time axis and is simply stacked.
//! Sequences that finish are dropped with one `index_select` per state tensor, and padding every remaining row
//! shares is trimmed. The KV buffers are allocated with room for the tokens the rows may still generate
//! ([`KvState`]), so decode steps write into them in place; merging and dropping rows rebuild them.

use candle_core::{DType, Device, Tensor};
use sgvlm_model::text::attention::KvState;
use sgvlm_model::text::deltanet::DeltaNetState;
use sgvlm_model::text::{LayerState, TextCache};

type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Stacked state of the running sequences.
#[derive(Debug)]
pub struct Batch {
    pub cache: Option<TextCache>,
    /// Leading padding slots of each row's KV cache.
    pub left_pad: Vec<usize>,
    /// KV length (padding included).
    pub kv_len: usize,
    /// Changes whenever rows join or leave (unique over the process), so that state built for one batch
    /// composition (fixed-shape decoding, [`super::fixed`]) is rebuilt for the next.
    pub generation: u64,
}

fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Batch {
    pub fn new() -> Self {
        Self { cache: None, left_pad: Vec::new(), kv_len: 0, generation: next_generation() }
    }

    pub fn rows(&self) -> usize {
        self.left_pad.len()
    }

    /// Appends `rows` sequences prefilled together into `cache` (KV length `len`, no padding). `room`: the most
    /// tokens any running row may still append, reserved in the KV buffers.
    pub fn merge(&mut self, cache: TextCache, len: usize, rows: usize, room: usize) -> Result<()> {
        self.generation = next_generation();
        let Some(mine) = self.cache.as_mut() else {
            let mut cache = cache;
            cache.reserve(room).map_err(err)?;
            self.cache = Some(cache);
            self.left_pad = vec![0; rows];
            self.kv_len = len;
            return Ok(());
        };
        let total = self.kv_len.max(len);
        let (pad_mine, pad_new) = (total - self.kv_len, total - len);
        for (a, b) in mine.layers.iter_mut().zip(cache.layers) {
            match (a, b) {
                (LayerState::Full(Some(a)), LayerState::Full(Some(b))) => {
                    let cat = |x: Tensor, y: Tensor| -> Result<Tensor> {
                        let x = if pad_mine > 0 { x.pad_with_zeros(2, pad_mine, 0).map_err(err)? } else { x };
                        let y = if pad_new > 0 { y.pad_with_zeros(2, pad_new, 0).map_err(err)? } else { y };
                        let y = y.to_dtype(x.dtype()).map_err(err)?;
                        Tensor::cat(&[&x, &y], 0).map_err(err)
                    };
                    let keys = cat(a.keys().map_err(err)?, b.keys().map_err(err)?)?;
                    let values = cat(a.values().map_err(err)?, b.values().map_err(err)?)?;
                    *a = KvState::with_room(&keys, &values, room).map_err(err)?;
                }
                (LayerState::Linear(Some(a)), LayerState::Linear(Some(b))) => {
                    let cat = |x: &Tensor, y: &Tensor| -> Result<Tensor> {
                        Tensor::cat(&[x, &y.to_dtype(x.dtype()).map_err(err)?], 0).map_err(err)
                    };
                    *a = DeltaNetState { conv: cat(&a.conv, &b.conv)?, recurrent: cat(&a.recurrent, &b.recurrent)? };
                }
                _ => return Err("internal: a prefilled cache is missing layer state".into()),
            }
        }
        self.left_pad.iter_mut().for_each(|p| *p += pad_mine);
        self.left_pad.extend(std::iter::repeat_n(pad_new, rows));
        self.kv_len = total;
        Ok(())
    }

    /// Keeps only the rows in `keep` (increasing), trimming padding all of them share.
    pub fn retain(&mut self, keep: &[usize], device: &Device) -> Result<()> {
        if keep.len() == self.rows() {
            return Ok(());
        }
        if keep.is_empty() {
            *self = Batch::new();
            return Ok(());
        }
        self.generation = next_generation();
        let Some(cache) = self.cache.as_mut() else { return Ok(()) };
        let trim = keep.iter().map(|&i| self.left_pad[i]).min().unwrap_or(0);
        let ids: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
        let index = Tensor::new(ids.as_slice(), device).map_err(err)?;
        let kv_len = self.kv_len;
        let select = |x: &Tensor| -> Result<Tensor> {
            // candle's index_select wants contiguous input (DeltaNet states can be transposed views).
            x.contiguous().and_then(|x| x.index_select(&index, 0)).map_err(err)
        };
        for layer in cache.layers.iter_mut() {
            match layer {
                LayerState::Full(Some(s)) => {
                    // The kept rows, without the padding they all share, into buffers with the same free room.
                    let room = s.capacity() - s.len();
                    let keep_time = |x: Tensor| x.narrow(2, trim, kv_len - trim).map_err(err);
                    let keys = keep_time(select(&s.keys().map_err(err)?)?)?;
                    let values = keep_time(select(&s.values().map_err(err)?)?)?;
                    *s = KvState::with_room(&keys, &values, room).map_err(err)?;
                }
                LayerState::Linear(Some(s)) => {
                    *s = DeltaNetState { conv: select(&s.conv)?, recurrent: select(&s.recurrent)? }
                }
                _ => {}
            }
        }
        self.left_pad = keep.iter().map(|&i| self.left_pad[i] - trim).collect();
        self.kv_len -= trim;
        Ok(())
    }

    /// The additive key mask `[B, 1, 1, kv_len + new]` for a step adding `new` keys per row, or None when no row
    /// has padding.
    pub fn key_mask(&self, new: usize, device: &Device) -> Result<Option<Tensor>> {
        if self.left_pad.iter().all(|&p| p == 0) {
            return Ok(None);
        }
        let total = self.kv_len + new;
        let b = self.rows();
        let pads: Vec<u32> = self.left_pad.iter().map(|&p| p as u32).collect();
        let pads = Tensor::from_vec(pads, (b, 1), device).map_err(err)?;
        let slots = Tensor::arange(0u32, total as u32, device).map_err(err)?.reshape((1, total)).map_err(err)?;
        let masked = slots.broadcast_lt(&pads).map_err(err)?.to_dtype(DType::F32).map_err(err)?;
        let mask = (masked * -1e30f64).map_err(err)?;
        mask.reshape((b, 1, 1, total)).map(Some).map_err(err)
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}
