//! The cleaned text as a slice of the input, for the common shapes of a model answer.
//!
//! The general cleaning ([`super::normalize_text`], then the code-fence and answer-tag replacements, then
//! `splitlines`) builds three strings and searches the text several times; for most answers its result is a
//! stripped slice of the input. [`fast_clean`] finds that slice in one pass over the `<` of the text and one check
//! of the slice's alphabet, and answers `None` (take the general path) for anything else.

use super::{answer_tag_end, has_toon_header_line, THINK_END};
use crate::pytext;

/// The cleaned text as a slice of `text`, when it is one: `None` sends the text to the general path.
///
/// Accepted shapes, after the general path's first strip (`s`):
/// - *thinking*: no `</think>` in `s` (then `strip_thinking` keeps `s`), or exactly one, with no TOON header line
///   before it and a non-blank rest after it (the loop drops the prefix and keeps the stripped rest `t`, in which
///   it finds no further marker);
/// - *answer block*: `t` holds no answer tag at all (`unwrap_answer` then replaces nothing and keeps `t`), or
///   exactly two, an opening one and then a closing one, around a non-blank inside (the only block, hence the
///   last one, and non-empty: `unwrap_answer` keeps its stripped inside whether or not it mentions `obj[n]`);
/// - *alphabet*: the result is printable ASCII and `\n` without a backtick: there is no code fence to replace,
///   no answer tag is left in it (all of `t`'s are outside), and only `\n` breaks its lines.
///
/// The final strip of `normalize_text` leaves the (already stripped) result as it is. The commonest case (no `<`
/// at all, or one block around the whole text, all in the plain alphabet) is decided by one counting pass before
/// any search.
pub(super) fn fast_clean(text: &str) -> Option<&str> {
    let s = pytext::strip(text);
    // The most common shape first, without searching: no `<` at all, or exactly the two of one answer block around
    // the whole text, in the plain alphabet.
    if let Some(opens) = plain_count_opens(s) {
        match opens {
            0 => return Some(s),
            // Both `<` are then the tags' (at 0 and len − 9), so the text is at least 17 bytes long.
            2 if s.starts_with("<answer>") && s.ends_with("</answer>") => {
                return Some(pytext::strip(&s[8..s.len() - 9])).filter(|inner| !inner.is_empty());
            }
            _ => {}
        }
    }
    let b = s.as_bytes();
    // Where the kept text `t` starts, and the answer tags found in it: (start, end, closing).
    let mut t_start = 0;
    let mut tags = [(0usize, 0usize, false); 2];
    let mut n_tags = 0;
    let mut think = false;
    let mut from = 0;
    while let Some(k) = s.get(from..).and_then(|rest| rest.find('<')) {
        let p = from + k;
        from = p + 1;
        if s[p..].starts_with(THINK_END) {
            if think || has_toon_header_line(&s[..p]) {
                return None;
            }
            // Tags before the marker are dropped with the prefix.
            think = true;
            t_start = p + THINK_END.len();
            n_tags = 0;
        } else if let Some(end) = answer_tag_end(s, p, None) {
            if n_tags == tags.len() {
                return None;
            }
            tags[n_tags] = (p, end, b.get(p + 1) == Some(&b'/'));
            n_tags += 1;
        }
    }
    let t = pytext::strip(&s[t_start..]);
    let inner = match (n_tags, tags) {
        (0, _) => t,
        (2, [(_, open_end, false), (close_start, _, true)]) => pytext::strip(&s[open_end..close_start]),
        _ => return None,
    };
    if inner.is_empty() {
        return None;
    }
    plain_count_opens(inner).map(|_| inner)
}

/// The number of `<` in `s` when it holds only printable ASCII but the backtick, and `\n`; `None` otherwise.
fn plain_count_opens(s: &str) -> Option<usize> {
    // Fixed-size chunks without an early exit inside let the compiler use vector instructions (a byte-at-a-time
    // fold over the whole text was ~17 % of a strict-evaluation case).
    let mut chunks = s.as_bytes().chunks_exact(32);
    let mut opens = 0;
    for chunk in &mut chunks {
        opens += plain_chunk(chunk)?;
    }
    Some(opens + plain_chunk(chunks.remainder())?)
}

/// [`plain_count_opens`] of a chunk of at most 255 bytes.
#[inline]
fn plain_chunk(chunk: &[u8]) -> Option<usize> {
    let (mut bad, mut opens) = (0u8, 0u8);
    for &c in chunk {
        bad |= u8::from(!(c == b'\n' || (0x20..0x7f).contains(&c)) | (c == b'`'));
        opens = opens.wrapping_add(u8::from(c == b'<'));
    }
    (bad == 0).then_some(usize::from(opens))
}
