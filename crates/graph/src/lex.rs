//! The row lexer every line-level parser shares: a cursor over one line that recognises the pieces of the
//! reference's row regexes (`\s*`, `\d+`, `-?\d+`, label tokens, bracketed label lists, header literals).
//!
//! Each method either consumes what it recognises and returns it, or leaves the cursor where it was. Written by
//! hand instead of with `regex` because the rows need Python's whitespace set (see [`crate::pytext`]) and because a
//! single forward pass is several times faster than a backtracking regex match per row.

use crate::label::is_label_byte;
use crate::pytext;
use crate::types::Schema;

/// A cursor over one line.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    #[inline]
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    #[inline]
    fn rest_bytes(&self) -> &'a [u8] {
        &self.s.as_bytes()[self.pos..]
    }

    /// `\s*` with Python's whitespace set.
    #[inline]
    pub fn ws(&mut self) {
        let b = self.rest_bytes();
        let mut i = 0;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        self.pos += i;
        if self.pos < self.s.len() && !matches!(self.s.as_bytes()[self.pos], b'0'..=b'9' | b'a'..=b'z' | b',') {
            self.pos += pytext::space_prefix_len(self.rest());
        }
    }

    /// Whether the whole line has been consumed.
    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    /// `\s*\Z`.
    #[inline]
    pub fn ws_end(&mut self) -> bool {
        self.ws();
        self.at_end()
    }

    /// Consumes one byte if it equals `b`.
    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        if self.rest_bytes().first() == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `\s*` `b` `\s*` — a separator with optional whitespace around it.
    #[inline]
    pub fn sep(&mut self, b: u8) -> bool {
        let save = self.pos;
        self.ws();
        if self.eat(b) {
            self.ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes `lit` compared ASCII case-insensitively.
    #[inline]
    pub fn literal_ci(&mut self, lit: &str) -> bool {
        if pytext::starts_with_ignore_case(self.rest_bytes(), lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// `\d+` (ASCII digits), as a saturating `u64`.
    #[inline]
    pub fn uint(&mut self) -> Option<u64> {
        let b = self.rest_bytes();
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(pytext::digits_saturating(&b[..n]))
    }

    /// `-?\d+` as `i64`, saturating at the `i64` range (any saturated value is far outside every canvas).
    #[inline]
    pub fn int(&mut self) -> Option<i64> {
        let save = self.pos;
        let neg = self.eat(b'-');
        match self.uint() {
            Some(v) => {
                let v = v.min(i64::MAX as u64) as i64;
                Some(if neg { -v } else { v })
            }
            None => {
                self.pos = save;
                None
            }
        }
    }

    /// A maximal run of label bytes for `schema` (not yet checked for canonical shape).
    #[inline]
    pub fn label_run(&mut self, schema: Schema) -> &'a str {
        let b = self.rest_bytes();
        let n = b.iter().take_while(|&&c| is_label_byte(schema, c)).count();
        let out = &self.s[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    /// `\[` class* `\]` for an AG label list, where the class is `[a-z0-9_./,\s-]` (ASCII case-insensitive):
    /// returns the text between the brackets.
    pub fn bracket_list(&mut self) -> Option<&'a str> {
        let save = self.pos;
        if !self.eat(b'[') {
            return None;
        }
        let start = self.pos;
        for (i, c) in self.rest().char_indices() {
            if c == ']' {
                let inner = &self.s[start..start + i];
                self.pos = start + i + 1;
                return Some(inner);
            }
            let ok = if c.is_ascii() {
                is_label_byte(Schema::Ag, c as u8) || c == ',' || pytext::is_space(c)
            } else {
                pytext::is_space(c)
            };
            if !ok {
                break;
            }
        }
        self.pos = save;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces() {
        let mut c = Cursor::new(" \u{a0}12 , -3,x]");
        c.ws();
        assert_eq!(c.uint(), Some(12));
        assert!(c.sep(b','));
        assert_eq!(c.int(), Some(-3));
        assert!(c.sep(b','));
        assert_eq!(c.int(), None);
        assert_eq!(c.label_run(Schema::Triplet), "x");
        assert!(!c.at_end());
    }

    #[test]
    fn lists() {
        let mut c = Cursor::new("[a, B_c ]x");
        assert_eq!(c.bracket_list(), Some("a, B_c "));
        assert!(c.eat(b'x'));
        let mut c = Cursor::new("[a;b]");
        assert_eq!(c.bracket_list(), None);
        assert!(c.eat(b'['));
    }

    #[test]
    fn saturation() {
        let mut c = Cursor::new("99999999999999999999999999");
        assert_eq!(c.uint(), Some(u64::MAX));
    }
}
