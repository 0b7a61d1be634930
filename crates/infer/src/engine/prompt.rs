//! From a [`GenRequest`] to model input: decoded and preprocessed images, the ChatML prompt text with each
//! `<image>` marker expanded to the image's placeholder run, and the token ids.
//!
//! Written here rather than with `sgvlm_model::tokenizer::ChatPrompt` because requests carry MS-SWIFT message
//! lists (several turns, `<image>` markers anywhere in user text) and the response prefix must be able to replace
//! the non-thinking prefix, as MS-SWIFT's `response_prefix` does (reference facts §2.5, §6.1). As in the Qwen3.5
//! template, message content is stripped of surrounding whitespace; a user message without markers gets its
//! images before the text.

use candle_core::{Device, Tensor};
use sgvlm_model::tokenizer::{Tokenizer, IMAGE_PAD, IM_END, IM_START, NON_THINKING_PREFIX, VISION_END, VISION_START};
use sgvlm_model::vision::merged_tokens;
use sgvlm_model::vision::processor::ImageProcessor;

use crate::backend::{BackendError, GenRequest, Role};

/// The MS-SWIFT image marker in user content.
pub const IMAGE_MARKER: &str = "<image>";

/// A request turned into model input.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    /// `[Σ patches, C·T_p·P·P]` f32 on the host device's engine (None without images).
    pub pixel_values: Option<Tensor>,
    pub grids: Vec<[usize; 3]>,
    /// What the assistant turn starts with (the non-thinking prefix or the request's response prefix); the
    /// returned text begins with it.
    pub assistant_prefix: String,
}

/// Builds the prompt of `req`: images decoded and preprocessed, text rendered and tokenized.
pub fn build(
    req: &GenRequest,
    tok: &Tokenizer,
    processor: &ImageProcessor,
    merge: usize,
    device: &Device,
) -> Result<Prompt, BackendError> {
    let mut pixels = Vec::new();
    let mut grids = Vec::new();
    for (index, bytes) in req.images.iter().enumerate() {
        let img = image::load_from_memory(bytes)
            .map_err(|e| BackendError::Image { index, message: format!("cannot decode: {e}") })?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let p = processor
            .preprocess_rgb(img.as_raw(), h as usize, w as usize)
            .map_err(|e| BackendError::Image { index, message: e.to_string() })?;
        pixels.extend_from_slice(&p.pixel_values);
        grids.push(p.grid_thw);
    }
    let (text, prefix) = render(req, &grids, merge)?;
    let ids = tok.encode(&text).map_err(|e| BackendError::BadRequest(e.to_string()))?;
    let pixel_values = if grids.is_empty() {
        None
    } else {
        let rows: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
        let cols = pixels.len() / rows.max(1);
        let t = Tensor::from_vec(pixels, (rows, cols), device);
        Some(t.map_err(|e| BackendError::Engine(format!("image tensor: {e}")))?)
    };
    Ok(Prompt { ids, pixel_values, grids, assistant_prefix: prefix })
}

/// The prompt text and the assistant prefix for `req` with images of `grids` (in marker order).
pub fn render(req: &GenRequest, grids: &[[usize; 3]], merge: usize) -> Result<(String, String), BackendError> {
    if req.messages.is_empty() {
        return Err(BackendError::BadRequest("the request has no messages".into()));
    }
    let image_text = |g: &[usize; 3]| {
        let mut s = String::from(VISION_START);
        s.push_str(&IMAGE_PAD.repeat(merged_tokens(*g, merge)));
        s.push_str(VISION_END);
        s
    };
    let markers: usize = req.messages.iter().map(|m| m.content.matches(IMAGE_MARKER).count()).sum();
    let mut next = 0;
    let mut out = String::new();
    for m in &req.messages {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = m.content.trim();
        out.push_str(IM_START);
        out.push_str(role);
        out.push('\n');
        if m.role == Role::User && markers == 0 && next == 0 {
            // No markers anywhere: every image goes before the first user text.
            for g in grids {
                out.push_str(&image_text(g));
            }
            next = grids.len();
            out.push_str(content);
        } else {
            let mut parts = content.split(IMAGE_MARKER);
            out.push_str(parts.next().unwrap_or(""));
            for part in parts {
                let g = grids.get(next).ok_or_else(|| {
                    BackendError::BadRequest(format!("{markers} <image> markers but {} images", grids.len()))
                })?;
                out.push_str(&image_text(g));
                next += 1;
                out.push_str(part);
            }
        }
        out.push_str(IM_END);
        out.push('\n');
    }
    if next != grids.len() {
        return Err(BackendError::BadRequest(format!("{markers} <image> markers but {} images", grids.len())));
    }
    let prefix = req.params.response_prefix.clone().unwrap_or_else(|| NON_THINKING_PREFIX.to_string());
    out.push_str(IM_START);
    out.push_str("assistant\n");
    out.push_str(&prefix);
    Ok((out, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{GenParams, Message};

    fn req(content: &str, prefix: Option<&str>) -> GenRequest {
        GenRequest {
            messages: vec![Message { role: Role::User, content: content.into() }],
            images: vec![],
            params: GenParams { response_prefix: prefix.map(String::from), ..Default::default() },
        }
    }

    #[test]
    fn markers_expand_in_place_and_prefix_replaces_the_think_block() {
        let (text, prefix) = render(&req("<image>\nDescribe.\n", Some("<answer>")), &[[1, 2, 4]], 2).unwrap();
        assert_eq!(
            text,
            "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>\nDescribe.<|im_end|>\n\
             <|im_start|>assistant\n<answer>"
        );
        assert_eq!(prefix, "<answer>");
        let (text, prefix) = render(&req("Describe.", None), &[[1, 2, 2]], 2).unwrap();
        assert!(text.starts_with("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe."));
        assert!(text.ends_with("assistant\n<think>\n\n</think>\n\n"));
        assert_eq!(prefix, NON_THINKING_PREFIX);
    }

    #[test]
    fn marker_count_must_match_images() {
        assert!(matches!(render(&req("<image><image>x", None), &[[1, 2, 2]], 2), Err(BackendError::BadRequest(_))));
        assert!(matches!(render(&req("<image>x", None), &[], 2), Err(BackendError::BadRequest(_))));
    }
}
