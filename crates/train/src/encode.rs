//! From chat text and an image to an [`Example`]: the Qwen3.5 ChatML prompt (images first, then the user text, then
//! the assistant turn with the empty think block) and the target tokens (the answer and `<|im_end|>`).
//!
//! The think block belongs to the prompt, so it is masked from the loss (`loss_scale ignore_empty_think`).

use std::path::Path;

use sgvlm_model::tokenizer::{ChatPrompt, Tokenizer, IMAGE_PAD, IM_END, VISION_END, VISION_START};
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::Config;

use crate::batch::{Example, ImageData};
use crate::error::{Result, TrainError};

/// Tokeniser, image processor and the prompt settings of one model.
pub struct Encoder {
    pub tokenizer: Tokenizer,
    pub processor: ImageProcessor,
    pub merge: usize,
    pub im_end: u32,
    pub pad: u32,
    /// System prompt (GRPO uses one; SFT and inference none).
    pub system: Option<String>,
}

impl Encoder {
    /// The encoder of a model directory: its `tokenizer.json`, `preprocessor_config.json` (pixel bounds; defaults
    /// when absent) and the config's patch sizes.
    pub fn from_dir(dir: &Path, cfg: &Config) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        let mut processor = processor_for(cfg);
        let pre = dir.join("preprocessor_config.json");
        if let Ok(text) = std::fs::read_to_string(&pre) {
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TrainError::Config { path: pre.clone(), message: e.to_string() })?;
            if let Some(n) = v.pointer("/size/shortest_edge").and_then(|x| x.as_u64()) {
                processor.min_pixels = n as usize;
            }
            if let Some(n) = v.pointer("/size/longest_edge").and_then(|x| x.as_u64()) {
                processor.max_pixels = n as usize;
            }
        }
        Self::new(tokenizer, processor, cfg)
    }

    pub fn new(tokenizer: Tokenizer, processor: ImageProcessor, cfg: &Config) -> Result<Self> {
        let im_end = tokenizer
            .token_id(IM_END)
            .ok_or_else(|| TrainError::Input("the tokenizer has no <|im_end|> token".into()))?;
        let pad = cfg.text_config.extra.get("pad_token_id").and_then(|v| v.as_u64()).map_or(im_end, |v| v as u32);
        Ok(Self { tokenizer, processor, merge: cfg.vision_config.spatial_merge_size, im_end, pad, system: None })
    }

    /// The prompt ids and image of a user turn (`<image>` markers in `user` are dropped: images go first).
    pub fn prompt(&self, user: &str, rgb: Option<(&[u8], usize, usize)>) -> Result<(Vec<u32>, Option<ImageData>)> {
        let image = match rgb {
            Some((px, h, w)) => {
                let p = self.processor.preprocess_rgb(px, h, w)?;
                Some((p.pixel_values, p.grid_thw))
            }
            None => None,
        };
        let counts: Vec<usize> = image.iter().map(|(_, g)| g[0] * g[1] * g[2] / (self.merge * self.merge)).collect();
        let text = user.replace("<image>\n", "").replace("<image>", "");
        no_vision_tokens("user message", &text)?;
        let rendered = ChatPrompt {
            system: self.system.as_deref(),
            image_tokens: &counts,
            user: text.trim(),
            response_prefix: "",
        }
        .render();
        Ok((self.tokenizer.encode(&rendered)?, image))
    }

    /// A training example: the prompt of `user`, and `answer` + `<|im_end|>` as the target.
    pub fn example(&self, user: &str, answer: &str, rgb: Option<(&[u8], usize, usize)>) -> Result<Example> {
        let (prompt, image) = self.prompt(user, rgb)?;
        no_vision_tokens("answer", answer)?;
        let mut target = self.tokenizer.encode(answer)?;
        target.push(self.im_end);
        Ok(Example { prompt, target, image })
    }
}

/// Text that would tokenize to one of the model's vision tokens is refused: the model reads an image placeholder
/// as part of an image (one too many fails the step: "N image placeholder tokens but M image features"), and a
/// stray vision start or end moves the image positions.
fn no_vision_tokens(what: &str, text: &str) -> Result<()> {
    const VISION: [&str; 4] = [IMAGE_PAD, "<|video_pad|>", VISION_START, VISION_END];
    match VISION.iter().find(|t| text.contains(*t)) {
        Some(t) => {
            Err(TrainError::Input(format!("the {what} contains `{t}`, a token the model reads as part of an image")))
        }
        None => Ok(()),
    }
}

/// The image processor for a config's patch sizes with Qwen3.5's default pixel bounds.
pub fn processor_for(cfg: &Config) -> ImageProcessor {
    let v = &cfg.vision_config;
    ImageProcessor {
        patch_size: v.patch_size,
        merge_size: v.spatial_merge_size,
        temporal_patch_size: v.temporal_patch_size,
        ..ImageProcessor::default()
    }
}

/// Decodes an image file to RGB bytes, height and width.
pub fn load_rgb(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let img = image::open(path)
        .map_err(|e| TrainError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok((img.into_raw(), h as usize, w as usize))
}

#[cfg(test)]
mod tests {
    use crate::demo::{demo_encoder, model_config, scene, user_prompt};

    #[test]
    fn text_with_a_vision_token_is_refused_with_the_part_that_holds_it() {
        let enc = demo_encoder(&model_config(false), 64 * 48).unwrap();
        let s = scene(1, 2, 0, (64, 48));
        let img = Some((&s.small.0[..], s.small.1, s.small.2));
        assert!(enc.example(&user_prompt(), &s.answer, img).is_ok());
        let answer = s.answer.replace("obj[", "<|image_pad|>obj[");
        let e = enc.example(&user_prompt(), &answer, img).unwrap_err().to_string();
        assert!(e.contains("the answer contains `<|image_pad|>`"), "{e}");
        let user = format!("{} <|vision_start|>", user_prompt());
        let e = enc.prompt(&user, img).unwrap_err().to_string();
        assert!(e.contains("the user message contains `<|vision_start|>`"), "{e}");
        // The `<image>` marker of MS-SWIFT rows is not a vision token: it is dropped.
        assert!(enc.prompt(&format!("<image>\n{}", user_prompt()), img).is_ok());
    }
}
