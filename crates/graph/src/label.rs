//! Label rules: which names and predicates count as canonical tokens, per schema.
//!
//! - Triplet (PSG/PVSG): `[a-z0-9]+(-[a-z0-9]+)*`, e.g. `sky-other-merged`, `in-front-of`.
//! - Action Genome: `[a-z0-9]+([a-z0-9_./-]*[a-z0-9])?`, which also allows `_ . /` inside, e.g. `cup/glass/bottle`,
//!   `in_front_of`.
//!
//! The reference lowercases before checking, so `Adult` is canonical (as `adult`); the strict row grammar is
//! case-insensitive for the same reason. Only ASCII is folded (see [`crate::pytext`]).

use crate::pytext;
use crate::types::Schema;

/// Whether `b` may appear inside a label token of `schema` (ASCII letters of either case, digits, and the
/// schema's inner punctuation).
#[inline]
pub fn is_label_byte(schema: Schema, b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || match schema {
            Schema::Triplet => b == b'-',
            Schema::Ag => matches!(b, b'-' | b'_' | b'.' | b'/'),
        }
}

/// Whether `s` (already lowercased or not: ASCII case is ignored) is a canonical label token of `schema`.
pub fn is_canonical(schema: Schema, s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    match schema {
        Schema::Triplet => {
            let mut prev_dash = false;
            for &c in b {
                if c == b'-' {
                    if prev_dash {
                        return false;
                    }
                    prev_dash = true;
                } else if c.is_ascii_alphanumeric() {
                    prev_dash = false;
                } else {
                    return false;
                }
            }
            true
        }
        Schema::Ag => b.iter().all(|&c| is_label_byte(Schema::Ag, c)),
    }
}

/// The reference's `_category_key`: `strip().lower()`, kept only if canonical, else the empty string (which never
/// matches anything).
pub fn category_key(schema: Schema, s: &str) -> String {
    let t = pytext::strip(s);
    if is_canonical(schema, t) {
        t.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// Normalisation used by the evaluation scripts when comparing names and predicates: `_` and `-` become spaces,
/// then strip and lowercase (e.g. `sitting-on` and `Sitting_on` both become `sitting on`).
pub fn eval_normalize(s: &str) -> String {
    let mut out = Vec::new();
    eval_normalize_into(s, &mut out);
    String::from_utf8(out).expect("eval_normalize_into appends whole UTF-8 strings")
}

/// [`eval_normalize_into`]'s byte map on ASCII: `_`/`-` → space, ASCII letters lowercased, the rest unchanged.
const EVAL_MAP: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c == b'_' || c == b'-' { b' ' } else { c.to_ascii_lowercase() };
        i += 1;
    }
    t
};

/// The ASCII bytes [`eval_normalize_into`] trims from both ends: `_`, `-` and Python whitespace.
const EVAL_TRIM: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = c == b'_' || c == b'-' || pytext::is_ascii_space(c);
        i += 1;
    }
    t
};

/// [`eval_normalize`] appended to `out` as UTF-8 bytes (the evaluation parser's flat graphs keep all labels in one
/// byte buffer: appending mapped ASCII bytes needs no UTF-8 check, which cost more than the mapping).
pub fn eval_normalize_into(s: &str, out: &mut Vec<u8>) {
    // ASCII first: `_`/`-` and Python whitespace are trimmed from both ends, `_`/`-` become spaces inside, and
    // ASCII lowercasing is Unicode lowercasing on ASCII. Both through tables, and the ASCII check rides along
    // with the mapping: labels are a few bytes long, and the per-byte passes are what costs. Every non-ASCII byte
    // lies between the trimmed ends (only ASCII bytes are trimmed), so the mapped part decides.
    let b = s.as_bytes();
    let keep = |c: &u8| !EVAL_TRIM[usize::from(*c)];
    let Some(start) = b.iter().position(keep) else {
        // Only ASCII trimmed bytes: the result is empty.
        return;
    };
    let end = b.iter().rposition(keep).map_or(start, |k| k + 1);
    let from = out.len();
    let mut high = 0u8;
    out.extend(b[start..end].iter().map(|&c| {
        high |= c;
        EVAL_MAP[usize::from(c)]
    }));
    if high < 0x80 {
        return;
    }
    out.truncate(from);
    let replaced: String = s.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    out.extend_from_slice(pytext::strip(&replaced).to_lowercase().as_bytes());
}

/// The PSG GRPO canonicalisation of a free-form label: lowercase, `_`→`-`, any run of characters outside
/// `[a-z0-9]` → `-`, runs of `-` collapsed, leading/trailing `-` stripped (`traffic light` → `traffic-light`).
pub fn hyphenate(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_dash = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplet_tokens() {
        for ok in ["person", "sky-other-merged", "in-front-of", "Adult", "a1", "9"] {
            assert!(is_canonical(Schema::Triplet, ok), "{ok}");
        }
        for bad in ["", "traffic light", "-a", "a-", "a--b", "in_front_of", "cup/glass", "a.b", "ünï"] {
            assert!(!is_canonical(Schema::Triplet, bad), "{bad}");
        }
    }

    #[test]
    fn ag_tokens() {
        for ok in ["cup/glass/bottle", "in_front_of", "a", "a.b-c_d/e", "Person"] {
            assert!(is_canonical(Schema::Ag, ok), "{ok}");
        }
        for bad in ["", "in front of", "_a", "a_", "a/", ".a", "a,b"] {
            assert!(!is_canonical(Schema::Ag, bad), "{bad}");
        }
    }

    #[test]
    fn keys_and_normalisation() {
        assert_eq!(category_key(Schema::Triplet, " Adult "), "adult");
        assert_eq!(category_key(Schema::Triplet, "traffic light"), "");
        assert_eq!(eval_normalize("Sitting_on"), "sitting on");
        assert_eq!(eval_normalize("in-front-of"), "in front of");
        assert_eq!(hyphenate("Traffic  Light"), "traffic-light");
        assert_eq!(hyphenate("__door_stuff__"), "door-stuff");
        assert_eq!(hyphenate("sky-other-merged"), "sky-other-merged");
    }

    /// `eval_normalize` as written first (two allocations), the definition the ASCII fast path must equal.
    fn eval_normalize_general(s: &str) -> String {
        let replaced: String = s.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
        pytext::strip(&replaced).to_lowercase()
    }

    proptest::proptest! {
        #[test]
        fn eval_normalize_fast_path(s in "[ _\t\x1fA-Za-z0-9/.-]{0,12}|[ _a\u{a0}\u{130}\u{3a3}-]{0,6}") {
            proptest::prop_assert_eq!(eval_normalize(&s), eval_normalize_general(&s));
        }
    }
}
