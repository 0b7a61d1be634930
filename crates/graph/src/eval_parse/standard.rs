//! One scan over an answer in the standard layout — the layout the model is trained to write:
//!
//! ```text
//! obj[N]{id,name,x1,y1,x2,y2}:
//!   <id>,<name>,<x1>,<y1>,<x2>,<y2>      (N rows)
//! rel[M]{subj,pred,obj}:
//!   <subj>,<pred>,<obj>                  (M rows)
//! ```
//!
//! The general parser ([`super::parse_with`]) splits the text into kept lines, searches every line twice for a
//! block header, then counts commas, splits and strips each row in separate passes (~45 % of a strict-evaluation
//! case). Here each line is scanned once: the comma positions are recorded while looking for the bytes that could
//! make the line anything but a plain row (`"` starts a quoted CSV field, `{` and `}` belong to headers).
//!
//! Why this equals the general parse when it answers (`Some`): the text is the one-slice cleaned text of
//! [`super::fast_clean()`] (printable ASCII and `\n`, so the only whitespace is U+0020); its first line is the exact
//! object header (so it is the first object header and has no tail), no row holds `{` or `}` (so no row is a block
//! header and the first relation header is the one found here), every row before it is an object row with exactly
//! five commas and a digit id (so none starts with `rel[` and none is skipped), and every row after it is a
//! relation row with exactly two commas and digit ids. Fields are cut, stripped, converted and handed to the sink
//! by the same helpers as the general path. Anything else — a missing relation header, a quote, a row the general
//! parser would skip or that would end its object block — answers `None`, and the caller takes the general path.
//! The property tests in `tests.rs` compare both parsers on generated texts and the oracle rows.
//!
//! Rows in the plainest form (digits, a label, digits, no spaces but before the label) are read field by field
//! as they come by [`plain::row`], the loop below being the fallback for any other line.

mod plain;
mod swar;

use super::pyconv::{py_float, CSV_FIELD_LIMIT};
use super::{digit_string_value, push_object, Sink};

const OBJ_HEAD: &str = "obj[";
const OBJ_TAIL: &str = "]{id,name,x1,y1,x2,y2}:";
const REL_HEAD: &str = "rel[";
const REL_TAIL: &str = "]{subj,pred,obj}:";

/// Parses `inner` (the output of `fast_clean`) into `out` if it is in the standard layout: `Some(found)` as the
/// general parse would answer, `None` (with `out` possibly half filled: the caller resets it) otherwise.
pub(super) fn parse(inner: &str, out: &mut impl Sink) -> Option<bool> {
    let b = inner.as_bytes();
    let first_end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    if !is_header(inner[..first_end].trim_end_matches(' '), OBJ_HEAD, OBJ_TAIL) {
        return None;
    }
    let mut in_relations = false;
    let mut pos = first_end + 1;
    // Lines are found in the same byte loop that records the commas: a `memchr` per line of ~25 bytes costs more
    // than it finds.
    while pos < b.len() {
        if let Some(next) = plain::row(inner, pos, in_relations, out) {
            pos = next;
            continue;
        }
        let start = pos;
        let mut commas = [0usize; 6];
        let (mut n, mut special) = (0usize, false);
        while pos < b.len() {
            match b[pos] {
                b'\n' => break,
                b',' => {
                    if n < commas.len() {
                        commas[n] = pos - start;
                    }
                    n += 1;
                }
                b'"' | b'{' | b'}' => special = true,
                _ => {}
            }
            pos += 1;
        }
        let l = inner[start..pos].trim_end_matches(' ');
        pos += 1;
        if l.is_empty() {
            continue;
        }
        if l.len() > CSV_FIELD_LIMIT {
            return None;
        }
        if special {
            if !in_relations && is_header(l.trim_start_matches(' '), REL_HEAD, REL_TAIL) {
                in_relations = true;
                continue;
            }
            return None;
        }
        // Field k as Python's csv reader (skipinitialspace) cuts it between commas.
        let field = |k: usize| {
            let from = if k == 0 { 0 } else { commas[k - 1] + 1 };
            let to = if k == n { l.len() } else { commas[k] };
            l[from..to].trim_start_matches(' ')
        };
        if in_relations {
            if n != 2 {
                return None;
            }
            let subj = digit_string_value(field(0).trim_end_matches(' '))?;
            let obj = digit_string_value(field(2).trim_end_matches(' '))?;
            out.relation(subj, field(1), obj);
        } else {
            if n != 5 {
                return None;
            }
            let id = digit_string_value(field(0).trim_end_matches(' '))?;
            let bbox = [py_float(field(2))?, py_float(field(3))?, py_float(field(4))?, py_float(field(5))?];
            push_object(out, id, field(1), bbox);
        }
    }
    in_relations.then(|| out.has_objects())
}

/// `line` is exactly `head`, one or more ASCII digits, `tail`.
fn is_header(line: &str, head: &str, tail: &str) -> bool {
    let Some(rest) = line.strip_prefix(head) else {
        return false;
    };
    let d = rest.bytes().take_while(u8::is_ascii_digit).count();
    d > 0 && &rest[d..] == tail
}
