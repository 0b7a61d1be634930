//! Eight bytes at a time ("SIMD within a register") for the two loops of a plain row: the label's end and a
//! coordinate's digits. Why by hand: both runs are a few bytes long and end at an unpredictable place, so a
//! byte loop pays a compare, a branch and a mispredicted exit per field; on one `u64` the end is found with a
//! handful of integer operations and `trailing_zeros`. Texts are little-endian loaded (byte 0 lowest), and every
//! test below decides each byte on its own bits only, so the lowest flagged byte is exactly the first match.
//! The tests compare both with byte loops on all short inputs built from the interesting bytes.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte of `b` that ends a label or makes a row not plain (`,` `\n` `"` `{` `}`).
#[inline]
pub(super) fn label_stop(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        let m = eq_byte(w, b',') | eq_byte(w, b'\n') | eq_byte(w, b'"') | eq_byte(w, b'{') | eq_byte(w, b'}');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| matches!(c, b',' | b'\n' | b'"' | b'{' | b'}')).map(|k| i + k)
}

/// Bit 7 of the first byte of `w` equal to `c` set (bits above it may be set too: the "has zero byte" test on
/// `w ^ c…c`, whose borrow can only flag bytes above a true zero).
#[inline]
fn eq_byte(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The leading ASCII digits of `b` when there are 1 to 7 of them and 8 bytes to read: `(value, count)`.
/// `None`: no digit, 8 or more, or fewer than 8 bytes left (the caller's byte loop decides).
#[inline]
pub(super) fn short_digits(b: &[u8]) -> Option<(u64, usize)> {
    let w = u64::from_le_bytes(*b.first_chunk::<8>()?);
    // A byte is a digit when its high nibble is 3 and its low nibble at most 9 (low + 6 carries into bit 4).
    let not_digit = ((w & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030)
        | ((w & 0x0F0F_0F0F_0F0F_0F0F).wrapping_add(0x0606_0606_0606_0606) & 0x1010_1010_1010_1010);
    let n = (not_digit.trailing_zeros() / 8) as usize;
    if n == 0 || n == 8 {
        return None;
    }
    // The digit values, first digit most significant, moved up so that the last digit is byte 7 (leading zeros
    // below), then combined pairwise: 2 digits per 16 bits, 4 per 32, 8 per 64.
    let d = (w & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - n));
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    let d = d.wrapping_mul(10_000) + (d >> 32);
    Some((d & 0xFFFF_FFFF, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20,000 pseudo-random strings of each length 0 to 12 over digits, the stop bytes and a few others (a
    /// fixed-seed LCG: the same strings on every run), checked against byte loops.
    #[test]
    fn equal_to_byte_loops() {
        let alphabet = b"0179,\n\"{}a/: \xff";
        let mut s = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..=12 {
            for _ in 0..20_000 {
                s.clear();
                for _ in 0..len {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    s.push(alphabet[(state >> 33) as usize % alphabet.len()]);
                }
                let stop = s.iter().position(|&c| matches!(c, b',' | b'\n' | b'"' | b'{' | b'}'));
                assert_eq!(label_stop(&s), stop, "{s:?}");
                let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
                let value = s[..n].iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
                let expected = (s.len() >= 8 && (1..8).contains(&n)).then_some((value, n));
                assert_eq!(short_digits(&s), expected, "{s:?}");
            }
        }
    }

    #[test]
    fn all_digit_counts_and_values() {
        for n in 1..8 {
            for v in [0u64, 1, 9, 10, 99, 1234567, 7654321, 1000000] {
                let digits = format!("{v:0n$}");
                if digits.len() != n {
                    continue;
                }
                let text = format!("{digits},xxxxxxxx");
                assert_eq!(short_digits(text.as_bytes()), Some((v, n)), "{text}");
            }
        }
    }
}
