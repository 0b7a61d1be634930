//! The reference's post-processing of a raw model answer (`finalize_vl_prediction`, §6.1 of the reference facts),
//! written out by hand because its two steps have quirks the outputs depend on: thinking is stripped in a loop that
//! keeps a prefix which already holds a scene-graph header, and an answer with `<answer>` but no `</answer>` is
//! closed with `"\n</answer>\n"` (trailing newline kept, unlike the other branches).

use sgvlm_graph::pytext::{is_space, lstrip, strip};

const THINK_END: &str = "</think>";

/// Strip thinking, then truncate at the first `</answer>` (inclusive) — what every runner stores as `predict`.
pub fn finalize_vl_prediction(raw: &str) -> String {
    truncate_first_answer_block(&strip_thinking_suffix(raw))
}

/// Whether `text` has a line starting (after whitespace) with `obj[<digits>]{id,name` — the reference's test for
/// "the model wrote a scene graph".
pub fn has_obj_header(text: &str) -> bool {
    has_header(text, "obj[", "]{id,name")
}

fn has_any_graph_header(text: &str) -> bool {
    has_obj_header(text)
        || has_header(text, "rel[", "]{subj,pred,obj}")
        || has_header(text, "rel_pairs[", "]{subj,attention")
}

/// `^\s*{open}\d+{close}` in multiline mode: `\s*` may cross line breaks, so checking each line's start suffices.
fn has_header(text: &str, open: &str, close: &str) -> bool {
    text.split('\n').any(|line| {
        let rest = line.trim_start_matches(is_space);
        let Some(rest) = rest.strip_prefix(open) else { return false };
        let digits = rest.chars().take_while(|c| c.is_numeric()).map(char::len_utf8).sum::<usize>();
        digits > 0 && rest[digits..].starts_with(close)
    })
}

/// The reference's `strip_thinking_suffix`.
pub fn strip_thinking_suffix(text: &str) -> String {
    let mut s = strip(text).to_string();
    while let Some(idx) = s.find(THINK_END) {
        let prefix = &s[..idx];
        let suffix = lstrip(&s[idx + THINK_END.len()..]);
        if has_any_graph_header(prefix) {
            return if suffix.is_empty() {
                strip(prefix).to_string()
            } else {
                strip(&format!("{prefix}\n{suffix}")).to_string()
            };
        }
        if suffix.is_empty() {
            return strip(prefix).to_string();
        }
        s = suffix.to_string();
    }
    s
}

/// The reference's `truncate_first_answer_block`.
pub fn truncate_first_answer_block(text: &str) -> String {
    let s = strip(text);
    if let Some(k) = s.find("</answer>") {
        return strip(&s[..k + "</answer>".len()]).to_string();
    }
    if s.contains("<answer>") {
        return format!("{}\n</answer>\n", s.trim_end_matches(is_space));
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_the_first_answer_close() {
        let raw = "  <answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n  1,a,0,0,1,1\n</answer> trailing </answer>";
        assert_eq!(finalize_vl_prediction(raw), "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n  1,a,0,0,1,1\n</answer>");
    }

    #[test]
    fn closes_an_open_answer_keeping_the_trailing_newline() {
        assert_eq!(finalize_vl_prediction("<answer>\nobj[0]{id,name}:  \n"), "<answer>\nobj[0]{id,name}:\n</answer>\n");
    }

    #[test]
    fn drops_thinking_before_the_graph() {
        let raw = "<think>\nlooking at the picture\n</think>\n\n<answer>x</answer>";
        assert_eq!(finalize_vl_prediction(raw), "<answer>x</answer>");
    }

    #[test]
    fn keeps_a_prefix_that_already_holds_a_header() {
        let raw = "obj[1]{id,name,x1,y1,x2,y2}:\n  1,a,0,0,1,1\n</think>\nrel[0]{subj,pred,obj}:";
        assert_eq!(strip_thinking_suffix(raw), "obj[1]{id,name,x1,y1,x2,y2}:\n  1,a,0,0,1,1\n\nrel[0]{subj,pred,obj}:");
    }

    #[test]
    fn thinking_with_nothing_after_keeps_the_prefix() {
        assert_eq!(strip_thinking_suffix("just thoughts</think>   "), "just thoughts");
        assert_eq!(strip_thinking_suffix("</think>"), "");
    }

    #[test]
    fn header_detection_follows_the_reference_pattern() {
        assert!(has_obj_header("<answer>\n   obj[12]{id,name,x1}:"));
        assert!(!has_obj_header("obj[]{id,name}"));
        assert!(!has_obj_header("see obj[1]{id,name}"));
    }
}
