//! Python-compatible text primitives.
//!
//! The reference implementation is Python: its parsers lean on `str.strip()`, `str.splitlines()`, `int()` and the
//! `re` module's `\s`. Reproducing its accept/reject decisions byte for byte needs the same notions of whitespace,
//! line break and integer, so they live here, written by hand (no crate models CPython's string semantics).
//!
//! Deliberate differences, documented once here and in the README:
//! - digits are ASCII only: Python's `\d` and `int()` also accept other Unicode decimal digits (Arabic-Indic,
//!   fullwidth, Devanagari, …); we reject them;
//! - case-insensitive matching is ASCII only: Python's `re.I` also folds the Kelvin sign to `k`, long s to `s` and
//!   dotless/dotted i to `i`; we do not.

/// `str.isspace()` / `re`'s `\s` for `str` patterns: Unicode `White_Space` plus the four ASCII information
/// separators U+001C–U+001F, which CPython also treats as whitespace.
#[inline]
pub fn is_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f')
    } else {
        c.is_whitespace()
    }
}

/// Whether an ASCII byte is Python whitespace (the ASCII half of [`is_space`]).
#[inline]
pub const fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f)
}

/// Start of `s` after its leading ASCII whitespace, or `None` when the first other byte is not ASCII (the caller
/// then falls back to the char-decoding path, which also knows the non-ASCII spaces).
#[inline]
fn ascii_lstrip_len(b: &[u8]) -> Option<usize> {
    let i = b.iter().position(|&c| !is_ascii_space(c)).unwrap_or(b.len());
    (b.get(i).is_none_or(|&c| c < 0x80)).then_some(i)
}

/// End of `b[..]` before its trailing ASCII whitespace, or `None` when the last other byte is not ASCII.
#[inline]
fn ascii_rstrip_len(b: &[u8]) -> Option<usize> {
    let e = b.iter().rposition(|&c| !is_ascii_space(c)).map_or(0, |k| k + 1);
    (e == 0 || b[e - 1] < 0x80).then_some(e)
}

/// `str.strip()` with no arguments.
#[inline]
pub fn strip(s: &str) -> &str {
    // ASCII fast path: both ends stop at an ASCII non-space byte, where the general trim stops too.
    let b = s.as_bytes();
    if let Some(start) = ascii_lstrip_len(b) {
        if let Some(end) = ascii_rstrip_len(&b[start..]) {
            return &s[start..start + end];
        }
    }
    s.trim_matches(is_space)
}

/// `str.lstrip()` with no arguments.
#[inline]
pub fn lstrip(s: &str) -> &str {
    match ascii_lstrip_len(s.as_bytes()) {
        Some(start) => &s[start..],
        None => s.trim_start_matches(is_space),
    }
}

/// `str.rstrip()` with no arguments.
#[inline]
pub fn rstrip(s: &str) -> &str {
    match ascii_rstrip_len(s.as_bytes()) {
        Some(end) => &s[..end],
        None => s.trim_end_matches(is_space),
    }
}

/// Whether `c` ends a line for `str.splitlines()` (`\r\n` counts as one break).
#[inline]
pub fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `s.split(',')` for row fields. A byte predicate rather than the `','` pattern clippy prefers: the pattern
/// searches with a `memchr` call per field, which costs more than it finds on fields of a few bytes.
#[allow(clippy::manual_pattern_char_comparison)]
#[inline]
pub fn split_commas(s: &str) -> std::str::Split<'_, impl FnMut(char) -> bool> {
    s.split(|c: char| c == ',')
}

/// `str.splitlines()` without `keepends`: yields each line with its terminator removed; a terminator at the very
/// end does not produce a trailing empty line. Each item carries the byte offset of the line start in `s`.
pub fn splitlines(s: &str) -> SplitLines<'_> {
    SplitLines { s, pos: 0 }
}

/// Iterator returned by [`splitlines`].
#[derive(Debug, Clone)]
pub struct SplitLines<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.s.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.s[start..];
        let bytes = rest.as_bytes();
        // One byte loop over ASCII, falling back to char decoding for non-ASCII. (A `memchr` for the next `\n`
        // plus a check of the bytes before it was tried in the first speed pass: on lines of a few dozen bytes
        // the call costs more than it saves — rewards 4–8 % faster without it, interleaved at load 8–9.)
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if (0x1f..0x80).contains(&b) {
                // Printable ASCII and the unit separator: never a line break.
                i += 1;
            } else if b < 0x80 {
                if matches!(b, b'\n' | b'\r' | 0x0b | 0x0c | 0x1c | 0x1d | 0x1e) {
                    let line = &rest[..i];
                    let mut next = i + 1;
                    if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                        next += 1;
                    }
                    self.pos = start + next;
                    return Some((start, line));
                }
                i += 1;
            } else {
                let c = rest[i..].chars().next().unwrap_or('\u{fffd}');
                let w = c.len_utf8();
                if is_line_break(c) {
                    self.pos = start + i + w;
                    return Some((start, &rest[..i]));
                }
                i += w;
            }
        }
        self.pos = self.s.len();
        Some((start, rest))
    }
}

/// Number of lines `str.splitlines()` would give for `s[..end]` — used to turn byte offsets into 1-based line
/// numbers consistent with the parsers' notion of a line.
pub fn line_number_at(s: &str, end: usize) -> usize {
    let end = end.min(s.len());
    let mut n = 1;
    let mut prev_cr = false;
    for c in s[..end].chars() {
        if is_line_break(c) && !(c == '\n' && prev_cr) {
            n += 1;
        }
        prev_cr = c == '\r';
    }
    n
}

/// Python `int(s)` for a decimal string, limited to `i64`: optional surrounding whitespace, an optional sign,
/// ASCII digits with single underscores between them (PEP 515). Returns `None` for anything Python would reject
/// and for magnitudes beyond `i64` (documented: such numbers are treated as malformed).
pub fn py_int(s: &str) -> Option<i64> {
    let t = strip(s).as_bytes();
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits[0].is_ascii_digit() || !digits[digits.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut v: i64 = 0;
    let mut prev_us = false;
    for &b in digits {
        if b == b'_' {
            if prev_us {
                return None;
            }
            prev_us = true;
            continue;
        }
        prev_us = false;
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// Parses a run of ASCII digits (as matched by `\d+`) into a saturating `u64`: values beyond `u64::MAX` become
/// `u64::MAX`, which is far outside every valid range, so saturation never turns an invalid number into a valid one.
#[inline]
pub fn digits_saturating(d: &[u8]) -> u64 {
    let mut v: u64 = 0;
    for &b in d {
        v = v.saturating_mul(10).saturating_add((b - b'0') as u64);
    }
    v
}

/// ASCII case-insensitive prefix test.
#[inline]
pub fn starts_with_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// Byte offset of the first ASCII case-insensitive occurrence of `needle` in `hay` at or after `from`.
pub fn find_ignore_case(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(hay.len()));
    }
    let last = hay.len().checked_sub(needle.len())?;
    // Candidates are the two cases of the first byte (the same byte twice when it is not a letter).
    let (lo, up) = (needle[0].to_ascii_lowercase(), needle[0].to_ascii_uppercase());
    let mut i = from;
    while i <= last {
        let p = i + hay[i..=last].iter().position(|&c| c == lo || c == up)?;
        if hay[p..p + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

/// Length in bytes of the run of Python whitespace at the start of `s` that contains no line break
/// (inside a single line every `\s` is of this kind).
#[inline]
pub fn space_prefix_len(s: &str) -> usize {
    s.len() - lstrip(s).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_find_ignore_case(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        (from..=hay.len().checked_sub(needle.len())?).find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
    }

    /// Line splitting by decoding every char (what the ASCII fast path must equal).
    fn naive_splitlines(s: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let (mut start, mut it) = (0, s.char_indices().peekable());
        while let Some((i, c)) = it.next() {
            if is_line_break(c) {
                out.push((start, &s[start..i]));
                start = i + c.len_utf8();
                if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
                    it.next();
                    start += 1;
                }
            }
        }
        if start < s.len() {
            out.push((start, &s[start..]));
        }
        out
    }

    proptest! {
        /// The ASCII fast paths equal the char-decoding definitions.
        #[test]
        fn fast_paths_equal_general(s in "[ \t\r\n\x0b\x0c\x1c-\x1fa-cA-C,\u{85}\u{a0}\u{2028}\u{3000}\u{e9}]{0,16}",
                                    needle in "[aAbB,\u{e9}]{0,3}", from in 0usize..20) {
            prop_assert_eq!(strip(&s), s.trim_matches(is_space));
            prop_assert_eq!(lstrip(&s), s.trim_start_matches(is_space));
            prop_assert_eq!(rstrip(&s), s.trim_end_matches(is_space));
            prop_assert_eq!(splitlines(&s).collect::<Vec<_>>(), naive_splitlines(&s));
            let (h, n) = (s.as_bytes(), needle.as_bytes());
            if !n.is_empty() {
                prop_assert_eq!(find_ignore_case(h, n, from), naive_find_ignore_case(h, n, from));
            }
        }
    }

    fn lines(s: &str) -> Vec<&str> {
        splitlines(s).map(|(_, l)| l).collect()
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(lines(""), Vec::<&str>::new());
        assert_eq!(lines("a"), vec!["a"]);
        assert_eq!(lines("a\n"), vec!["a"]);
        assert_eq!(lines("a\n\n"), vec!["a", ""]);
        assert_eq!(lines("a\r\nb\rc\x0bd\x0ce\x1cf\x1dg\x1eh"), vec!["a", "b", "c", "d", "e", "f", "g", "h"]);
        assert_eq!(lines("a\u{85}b\u{2028}c\u{2029}d"), vec!["a", "b", "c", "d"]);
        assert_eq!(lines("a\r\r\nb"), vec!["a", "", "b"]);
        assert_eq!(lines("\x1fa"), vec!["\x1fa"], "unit separator is whitespace, not a line break");
        assert_eq!(lines("\n"), vec![""]);
    }

    #[test]
    fn offsets_point_at_line_starts() {
        let s = "ab\r\ncd\u{2028}ef";
        let v: Vec<_> = splitlines(s).collect();
        assert_eq!(v, vec![(0, "ab"), (4, "cd"), (9, "ef")]);
    }

    #[test]
    fn whitespace_matches_python() {
        for c in [' ', '\t', '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\x1f', '\u{85}', '\u{a0}', '\u{3000}']
        {
            assert!(is_space(c), "{c:?}");
        }
        for c in ['a', '\u{200b}', '\u{feff}', '\x00', '_'] {
            assert!(!is_space(c), "{c:?}");
        }
        assert_eq!(strip("\u{a0} x \x1f"), "x");
    }

    #[test]
    fn py_int_matches_python() {
        assert_eq!(py_int("12"), Some(12));
        assert_eq!(py_int(" 007 "), Some(7));
        assert_eq!(py_int("+541"), Some(541));
        assert_eq!(py_int("-3"), Some(-3));
        assert_eq!(py_int("12_0"), Some(120));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("_1"), None);
        assert_eq!(py_int("1_"), None);
        assert_eq!(py_int("62e0"), None);
        assert_eq!(py_int("0.59e2"), None);
        assert_eq!(py_int(""), None);
        assert_eq!(py_int("-"), None);
        assert_eq!(py_int("nan"), None);
        assert_eq!(py_int("99999999999999999999999"), None);
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_number_at("a\nb\r\nc", 0), 1);
        assert_eq!(line_number_at("a\nb\r\nc", 2), 2);
        assert_eq!(line_number_at("a\nb\r\nc", 5), 3);
    }
}
