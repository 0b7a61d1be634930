//! The tokenizer's vocabulary as bytes, built once when an engine is made: output text is the concatenation of the
//! generated tokens' bytes (what the byte-level decoder yields), stop strings are matched on those bytes, and the
//! constraint walks a trie over them, so no step decodes text through the tokenizer.

use sgvlm_model::tokenizer::{TokenBytes, Tokenizer, IMAGE_PAD, IM_END};

/// Byte strings of every token id, plus the ids the engine treats specially.
#[derive(Debug, Clone)]
pub struct Vocab {
    pub tokens: Vec<TokenBytes>,
    /// Ids that end a sequence (`<|im_end|>`, `<|endoftext|>`), excluded from the text.
    pub end_ids: Vec<u32>,
    pub image_pad: Option<u32>,
}

impl Vocab {
    pub fn new(tok: &Tokenizer) -> Self {
        let end_ids = [IM_END, "<|endoftext|>"].iter().filter_map(|t| tok.token_id(t)).collect();
        Self { tokens: tok.token_bytes(), end_ids, image_pad: tok.token_id(IMAGE_PAD) }
    }

    /// The bytes of `id` (empty for ids the tokenizer does not know, e.g. the padding rows of the embedding).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.tokens.get(id as usize).map_or(&[], |t| &t.bytes)
    }

    pub fn is_end(&self, id: u32) -> bool {
        self.end_ids.contains(&id)
    }
}
