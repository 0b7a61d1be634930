//! Answer extraction shared by every parser: trailing end-of-turn tokens, a leading `<think>` block, and the
//! `<answer>` tags.
//!
//! Model outputs arrive as e.g. `<think>\n\n</think>\n\n<answer>\n…\n</answer><|im_end|>`; these helpers peel the
//! wrapper off the way the reference does, and return slices of the input so that callers can report positions.

use crate::pytext;

/// End-of-turn tokens the reference removes from the end of a completion.
pub const END_TOKENS: [&str; 3] = ["<|im_end|>", "<|endoftext|>", "<|end|>"];

const OPEN: &str = "<answer>";
const CLOSE: &str = "</answer>";

#[inline]
fn is_space_or_quote(c: char) -> bool {
    c == '"' || c == '\'' || pytext::is_space(c)
}

/// Removes one trailing run of end tokens (with whitespace and quotes around it), then strips:
/// `strip(sub(r'(\s|"|')*(<|im_end|>|<|endoftext|>|<|end|>)+(\s|"|')*\Z', '', strip(text)))`.
pub fn strip_trailing_special_tokens(text: &str) -> &str {
    let t = pytext::strip(text);
    let after_w2 = t.trim_end_matches(is_space_or_quote);
    let mut end = after_w2.len();
    let mut found = false;
    'outer: loop {
        for tok in END_TOKENS {
            if after_w2[..end].ends_with(tok) {
                end -= tok.len();
                found = true;
                continue 'outer;
            }
        }
        break;
    }
    if !found {
        return t;
    }
    let head = after_w2[..end].trim_end_matches(is_space_or_quote);
    pytext::strip(head)
}

/// Removes a leading `<think>…</think>` block (up to the first `</think>`) and the whitespace around it, if the
/// text starts with one (after whitespace). Text without a closed think block is returned unchanged.
pub fn strip_leading_think(text: &str) -> &str {
    let t = pytext::lstrip(text);
    if let Some(rest) = t.strip_prefix("<think>") {
        if let Some(i) = rest.find("</think>") {
            return pytext::lstrip(&rest[i + "</think>".len()..]);
        }
    }
    text
}

/// The text the strict gate inspects: stripped, trailing end tokens removed, a leading think block removed,
/// stripped again.
pub fn prepare_for_strict(raw: &str) -> &str {
    let t = strip_trailing_special_tokens(pytext::strip(raw));
    pytext::strip(strip_leading_think(t))
}

/// The body of an exact `<answer>\n BODY \n</answer>` frame (nothing before or after), if `s` is one.
pub fn exact_answer_body(s: &str) -> Option<&str> {
    if s.len() >= OPEN.len() + 1 + 1 + CLOSE.len() && s.starts_with("<answer>\n") && s.ends_with("\n</answer>") {
        Some(&s["<answer>\n".len()..s.len() - "\n</answer>".len()])
    } else {
        None
    }
}

/// The reward's answer text (`_graph_text`): the first `<answer>…</answer>` block's content; failing that,
/// everything after the first `<answer>`; failing that, the whole text — stripped, trailing end tokens removed.
pub fn reward_answer_text(text: &str) -> &str {
    let inner = match text.find(OPEN) {
        Some(i) => {
            let after = &text[i + OPEN.len()..];
            match after.find(CLOSE) {
                Some(j) => &after[..j],
                None => after,
            }
        }
        None => text,
    };
    strip_trailing_special_tokens(pytext::strip(inner))
}

/// Whether the text contains an `<answer>` tag followed (later) by `</answer>` (case-sensitive).
pub fn has_answer_tags(text: &str) -> bool {
    match text.find(OPEN) {
        Some(i) => text[i + OPEN.len()..].contains(CLOSE),
        None => false,
    }
}

/// Byte offset of `inner` inside `outer`; `inner` must be a subslice of `outer`.
pub(crate) fn offset_in(outer: &str, inner: &str) -> usize {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    debug_assert!(i >= o && i + inner.len() <= o + outer.len());
    i.saturating_sub(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_tokens() {
        assert_eq!(strip_trailing_special_tokens("x<|im_end|>"), "x");
        assert_eq!(strip_trailing_special_tokens("x \"<|im_end|><|endoftext|>' \n"), "x");
        assert_eq!(strip_trailing_special_tokens("x<|im_end|> <|end|>"), "x<|im_end|>", "one run only");
        assert_eq!(strip_trailing_special_tokens("x<|eot|>"), "x<|eot|>");
        assert_eq!(strip_trailing_special_tokens("  x  "), "x");
    }

    #[test]
    fn think_block() {
        assert_eq!(strip_leading_think("<think>\n\n</think>\n\n<answer>"), "<answer>");
        assert_eq!(strip_leading_think(" <think>a</think>b</think>c"), "b</think>c");
        assert_eq!(strip_leading_think("<think> unclosed"), "<think> unclosed");
        assert_eq!(strip_leading_think("x<think></think>"), "x<think></think>");
    }

    #[test]
    fn frame() {
        assert_eq!(exact_answer_body("<answer>\nA\n</answer>"), Some("A"));
        assert_eq!(exact_answer_body("<answer>\n\n</answer>"), Some(""));
        assert_eq!(exact_answer_body("<answer>\n</answer>"), None);
        assert_eq!(exact_answer_body("<answer>\nA\n</answer>\n"), None);
        assert_eq!(exact_answer_body("<answer>A\n</answer>"), None);
    }

    #[test]
    fn reward_text() {
        assert_eq!(reward_answer_text("pre<answer>\n a \n</answer>post<answer>b</answer>"), "a");
        assert_eq!(reward_answer_text("<answer>\nobj\n<|im_end|>"), "obj");
        assert_eq!(reward_answer_text(" bare "), "bare");
        assert!(has_answer_tags("x<answer>y</answer>"));
        assert!(!has_answer_tags("</answer><answer>"));
    }
}
