//! The LLM judge's prompts, verbatim from the reference evaluation (`eval_sgg_metrics_with_qwen.py`): two system
//! prompts (note the trailing space before each newline), the full-scene object and relation prompts, the scene
//! summary, and the answer parsing rule.

/// System prompt for object-label (synonym) disputes.
pub const SYSTEM_SYNONYM: &str = "You are a judge for scene graph evaluation. \nYou must answer with a single digit: 1 if the two given terms are synonymous in the given context, 0 otherwise. \nNo explanation, only 1 or 0.";

/// System prompt for relation (triplet) disputes.
pub const SYSTEM_TRIPLET: &str = "You are a judge for scene graph evaluation. \nYou must answer with a single digit: 1 if the two given relationship triplets (subject, predicate, object) \nare semantically equivalent in the scene context, 0 otherwise. No explanation, only 1 or 0.";

/// Generation limits the reference uses: 8 new tokens for objects, 16 (`--max-new-tokens-qwen`) for relations.
pub const OBJECT_MAX_TOKENS: u32 = 8;
pub const RELATION_MAX_TOKENS: u32 = 16;

/// Python's `repr()` of a string: single quotes unless the text contains `'` and no `"`; backslash escapes for the
/// quote, `\\`, `\n`, `\r`, `\t` and other non-printable characters.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !is_printable(c) => {
                let v = c as u32;
                if v <= 0xff {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable` for single characters: controls, separators other than the
/// ASCII space, and a few format characters are not printable.
fn is_printable(c: char) -> bool {
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// `Objects: 1:adult; 2:chair. Relations: (adult, sitting on, chair)` — the scene summary given to the judge.
pub fn scene_summary(objects: &[(String, String)], relations: &[(String, String, String)]) -> String {
    let objs: Vec<String> = objects.iter().map(|(id, name)| format!("{id}:{name}")).collect();
    let rels: Vec<String> = relations.iter().map(|(s, p, o)| format!("({s}, {p}, {o})")).collect();
    format!("Objects: {}. Relations: {}", objs.join("; "), rels.join("; "))
}

/// The full-scene object prompt.
pub fn object_prompt(gt_term: &str, pred_term: &str, gt_summary: &str, pred_summary: &str) -> String {
    format!(
        "You are given the full ground-truth and predicted scene graphs for one image. Based on this full context, \
         decide if the two object/category labels below refer to the same entity.\n\n\
         Full GT scene graph: {gt_summary}\n\n\
         Full predicted scene graph: {pred_summary}\n\n\
         Do the two labels {} (from GT) and {} (from prediction) refer to the same entity in this scene? Answer only 1 or 0.",
        py_repr(gt_term),
        py_repr(pred_term)
    )
}

/// The full-scene relation prompt; triplets are `(subject, predicate, object)` names.
pub fn relation_prompt(
    gt: (&str, &str, &str),
    pred: (&str, &str, &str),
    gt_summary: &str,
    pred_summary: &str,
) -> String {
    format!(
        "You are given the full ground-truth and predicted scene graphs for one image. Based on this full context, \
         decide if the specific relation pair below are semantically equivalent.\n\n\
         Full GT scene graph: {gt_summary}\n\n\
         Full predicted scene graph: {pred_summary}\n\n\
         Now consider this specific relation pair (same entities, matched by bounding box):\n\
         GT relation: subject={}, predicate={}, object={}.\n\
         Pred relation: subject={}, predicate={}, object={}.\n\
         Are these two relations semantically equivalent in the context of the scene above? Answer only 1 or 0.",
        py_repr(gt.0),
        py_repr(gt.1),
        py_repr(gt.2),
        py_repr(pred.0),
        py_repr(pred.1),
        py_repr(pred.2)
    )
}

/// Whether `text` contains `d` as a whole word (regex `\b d \b` for a single digit).
fn has_word_digit(text: &str, d: char) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    chars
        .iter()
        .enumerate()
        .any(|(i, &c)| c == d && (i == 0 || !word(chars[i - 1])) && (i + 1 == chars.len() || !word(chars[i + 1])))
}

/// The reference's verdict rule: 1 if a standalone `1` and no standalone `0`; else 0 if a `0`; else 1 if a `1`;
/// else 0.
pub fn parse_verdict(text: &str) -> bool {
    let t = text.trim();
    let (one, zero) = (has_word_digit(t, '1'), has_word_digit(t, '0'));
    one && !zero
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr("chair"), "'chair'");
        assert_eq!(py_repr("kid's toy"), "\"kid's toy\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(py_repr("café"), "'café'");
        assert_eq!(py_repr("\u{a0}x"), "'\\xa0x'");
    }

    #[test]
    fn verdicts() {
        assert!(parse_verdict("1"));
        assert!(parse_verdict(" 1\n"));
        assert!(!parse_verdict("0"));
        assert!(!parse_verdict("1 or 0"));
        assert!(!parse_verdict("10"));
        assert!(!parse_verdict(""));
        assert!(parse_verdict("Answer: 1."));
    }

    #[test]
    fn prompts_are_verbatim() {
        let s = scene_summary(
            &[("1".into(), "adult".into()), ("2".into(), "chair".into())],
            &[("adult".into(), "sitting on".into(), "chair".into())],
        );
        assert_eq!(s, "Objects: 1:adult; 2:chair. Relations: (adult, sitting on, chair)");
        let p = object_prompt("chair", "sofa", &s, "Objects: . Relations: ");
        assert!(p.starts_with("You are given the full ground-truth and predicted scene graphs for one image. Based on this full context, decide if the two object/category labels below refer to the same entity.\n\nFull GT scene graph: Objects: 1:adult"));
        assert!(p.ends_with("Do the two labels 'chair' (from GT) and 'sofa' (from prediction) refer to the same entity in this scene? Answer only 1 or 0."));
        let r = relation_prompt(("adult", "sitting on", "chair"), ("adult", "on", "chair"), &s, &s);
        assert!(r.contains("\nGT relation: subject='adult', predicate='sitting on', object='chair'.\nPred relation: subject='adult', predicate='on', object='chair'.\nAre these"));
    }
}
