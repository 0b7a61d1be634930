//! Three-axis M-RoPE position ids for text with images, as transformers' `Qwen3_5Model.get_rope_index`.
//!
//! Text tokens advance all three axes together. A run of image-placeholder tokens for an image with grid
//! `(t, h, w)` (in patches) gets, for merged token `(i, j, k)`, the ids `(start + i, start + j, start + k)` over
//! `(t, h/merge, w/merge)`; the next text position is `start + max(h, w)/merge`.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::rope::MropePositions;

/// Position ids for `ids` (one row per sequence, equal lengths) and each sequence's rope delta
/// (`max position + 1 − length`, the offset to add to plain positions when decoding after the prompt).
/// `grids` lists the images in order of appearance across the batch.
pub fn rope_index(cfg: &Config, ids: &[Vec<u32>], grids: &[[usize; 3]]) -> Result<(MropePositions, Vec<i64>)> {
    let merge = cfg.vision_config.spatial_merge_size;
    let image = cfg.image_token_id;
    let mut grid_iter = grids.iter();
    let mut axes: [Vec<Vec<i64>>; 3] = Default::default();
    let mut deltas = Vec::with_capacity(ids.len());
    for seq in ids {
        let mut rows: [Vec<i64>; 3] = Default::default();
        let mut pos: i64 = 0;
        let mut i = 0;
        while i < seq.len() {
            if seq[i] != image {
                for r in rows.iter_mut() {
                    r.push(pos);
                }
                pos += 1;
                i += 1;
                continue;
            }
            let run = seq[i..].iter().take_while(|&&x| x == image).count();
            let &[t, h, w] =
                grid_iter.next().ok_or_else(|| Error::Input("more image placeholder runs than image grids".into()))?;
            let (lh, lw) = (h / merge, w / merge);
            if run != t * lh * lw {
                return Err(Error::Input(format!(
                    "an image placeholder run has {run} tokens but its grid {:?} needs {}",
                    [t, h, w],
                    t * lh * lw
                )));
            }
            for ti in 0..t {
                for hi in 0..lh {
                    for wi in 0..lw {
                        rows[0].push(pos + ti as i64);
                        rows[1].push(pos + hi as i64);
                        rows[2].push(pos + wi as i64);
                    }
                }
            }
            pos += lh.max(lw) as i64;
            i += run;
        }
        let max = rows.iter().flat_map(|r| r.iter().copied()).max().unwrap_or(-1);
        deltas.push(max + 1 - seq.len() as i64);
        for (axis, r) in axes.iter_mut().zip(rows) {
            axis.push(r);
        }
    }
    if grid_iter.next().is_some() {
        return Err(Error::Input("more image grids than image placeholder runs".into()));
    }
    Ok((MropePositions { ids: axes }, deltas))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_run_positions_and_delta() {
        let cfg = Config::tiny();
        let im = cfg.image_token_id;
        // 2 text tokens, a 4x6-patch image (2x3 merged tokens), 2 text tokens.
        let ids = vec![vec![5, 6, im, im, im, im, im, im, 7, 8]];
        let (p, d) = rope_index(&cfg, &ids, &[[1, 4, 6]]).unwrap();
        assert_eq!(p.ids[0][0], vec![0, 1, 2, 2, 2, 2, 2, 2, 5, 6]);
        assert_eq!(p.ids[1][0], vec![0, 1, 2, 2, 2, 3, 3, 3, 5, 6]);
        assert_eq!(p.ids[2][0], vec![0, 1, 2, 3, 4, 2, 3, 4, 5, 6]);
        assert_eq!(d, vec![-3]);
        assert!(rope_index(&cfg, &ids, &[[1, 4, 4]]).is_err());
        assert!(rope_index(&cfg, &ids, &[]).is_err());
    }
}
