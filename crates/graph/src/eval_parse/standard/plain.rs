//! The plain row of the standard layout, read in one pass: `<digits>,<label>,<digits>,<digits>,<digits>,<digits>`
//! (object) or `<digits>,<label>,<digits>` (relation), each ending at `\n` or the end of the text, with no space
//! but inside or before the label and with coordinates of at most 15 digits.
//!
//! Why a second reader next to the row loop of [`super::parse`]: that loop records the commas of a line, then cuts,
//! strips and converts each field in separate passes (a `py_float` call per coordinate). Most rows the model writes
//! are plain, and reading them field by field as they come costs a fraction of that. Such a row is one the loop
//! reads the same way: no `"`, `{` or `}`, exactly five (two) commas, nothing to strip but the label's leading
//! spaces (which the loop strips too), ids that are digit strings (`digit_string_value`) and coordinates that
//! `py_float`'s digit fast path turns into the same `f64`. Anything else answers `None` and the loop reads the
//! line as before.

use super::super::pyconv::CSV_FIELD_LIMIT;
use super::super::{push_object, Sink};
use super::swar;
use crate::pytext::digits_saturating;

/// Reads a plain row starting at byte `start` of `text` into `out`; the position after its line end, or `None`
/// (nothing pushed) when the row is not plain.
#[inline]
pub(super) fn row(text: &str, start: usize, relation: bool, out: &mut impl Sink) -> Option<usize> {
    let mut c = Cursor { rest: text.as_bytes().get(start..)? };
    let id = c.id()?;
    c.comma()?;
    c.skip_spaces();
    let label_start = text.len() - c.rest.len();
    let label_len = c.label()?;
    let label = text.get(label_start..label_start + label_len)?;
    if relation {
        let obj = c.id()?;
        let end = c.line_end(text, start)?;
        out.relation(id, label, obj);
        Some(end)
    } else {
        let x1 = c.coordinate()?;
        c.comma()?;
        let y1 = c.coordinate()?;
        c.comma()?;
        let x2 = c.coordinate()?;
        c.comma()?;
        let y2 = c.coordinate()?;
        let end = c.line_end(text, start)?;
        push_object(out, id, label, [x1, y1, x2, y2]);
        Some(end)
    }
}

/// The unread rest of the text (a shrinking slice: no index to check against its length).
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    /// A run of ASCII digits: its value modulo 2^64 and its length (0 when the next byte is no digit).
    #[inline]
    fn digits(&mut self) -> (u64, usize) {
        if let Some(short) = swar::short_digits(self.rest) {
            return short;
        }
        let (mut v, mut n) = (0u64, 0usize);
        for &c in self.rest {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            n += 1;
        }
        (v, n)
    }

    /// An id: a non-empty digit run, saturating at `u64::MAX` as `digit_string_value` does (19 digits never
    /// wrap; a longer run is read again by `digits_saturating`).
    #[inline]
    fn id(&mut self) -> Option<u64> {
        let (v, n) = self.digits();
        let value = match n {
            0 => return None,
            1..=19 => v,
            _ => digits_saturating(&self.rest[..n]),
        };
        self.rest = &self.rest[n..];
        Some(value)
    }

    /// A coordinate of 1 to 15 digits: an integer `f64` holds exactly, as `py_float` reads it.
    #[inline]
    fn coordinate(&mut self) -> Option<f64> {
        let (v, n) = self.digits();
        if !(1..=15).contains(&n) {
            return None;
        }
        self.rest = &self.rest[n..];
        // Below 10^15: exact through `i64`, whose conversion is one instruction (`u64`'s is several).
        Some(v as i64 as f64)
    }

    #[inline]
    fn comma(&mut self) -> Option<()> {
        let (&c, rest) = self.rest.split_first()?;
        (c == b',').then(|| self.rest = rest)
    }

    #[inline]
    fn skip_spaces(&mut self) {
        let spaces = self.rest.iter().take_while(|&&c| c == b' ').count();
        self.rest = &self.rest[spaces..];
    }

    /// The label field (its leading spaces skipped already), up to and past the next comma: its length, the cursor
    /// left after the comma. `None` at a line end or a byte that makes the row special (`"`, `{`, `}`).
    #[inline]
    fn label(&mut self) -> Option<usize> {
        let n = swar::label_stop(self.rest)?;
        if self.rest[n] != b',' {
            return None;
        }
        self.rest = &self.rest[n + 1..];
        Some(n)
    }

    /// The end of the row (`\n` or the end of the text, no trailing space) for a row that began at `start` and
    /// stays within the csv field size limit: the position in `text` after it.
    #[inline]
    fn line_end(&self, text: &str, start: usize) -> Option<usize> {
        let at = text.len() - self.rest.len();
        let ends = self.rest.first().is_none_or(|&c| c == b'\n');
        (ends && at - start <= CSV_FIELD_LIMIT).then_some(at + 1)
    }
}
