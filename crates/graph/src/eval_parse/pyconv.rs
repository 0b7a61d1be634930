//! Python `float(str)` and one-line `csv.reader(..., skipinitialspace=True)`, as far as the evaluation parser
//! needs them. Digits are ASCII only (the crate-wide stance, see [`crate::pytext`]).

use crate::pytext;
use std::borrow::Cow;

/// CPython's default `csv.field_size_limit()`: a longer field makes the reader raise.
pub(crate) const CSV_FIELD_LIMIT: usize = 131_072;

/// Python `float(s)`: surrounding whitespace, an optional sign, then `inf`/`infinity`/`nan` (any case) or a
/// decimal literal (`12`, `1.`, `.5`, `62e0`, `0.59E+2`) with single underscores allowed only between digits.
/// `None` where Python raises `ValueError`.
pub fn py_float(s: &str) -> Option<f64> {
    // Fast path: up to 15 ASCII digits (nothing to strip, no sign) are an integer that `f64` holds exactly, as
    // the general parse gives it. Checked first: most coordinates are written this way.
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(pytext::digits_saturating(b) as f64);
    }
    let t = pytext::strip(s);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let signed = |v: f64| if neg { -v } else { v };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(signed(f64::INFINITY));
    }
    if body.eq_ignore_ascii_case("nan") {
        return Some(signed(f64::NAN));
    }
    // Fast path: up to 15 ASCII digits are an integer that `f64` holds exactly, as the general parse gives it.
    let b = body.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(signed(pytext::digits_saturating(b) as f64));
    }
    let clean = decimal_without_underscores(body)?;
    clean.parse::<f64>().ok().map(signed)
}

/// Validates `digits [. digits] [e [sign] digits]` (at least one mantissa digit, exponent digits required when
/// `e` is present) with underscores only between two ASCII digits; returns the literal without underscores.
fn decimal_without_underscores(body: &str) -> Option<Cow<'_, str>> {
    let b = body.as_bytes();
    if !b.contains(&b'_') {
        return decimal_grammar(b).then_some(Cow::Borrowed(body));
    }
    let mut out = String::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i > 0 && b[i - 1].is_ascii_digit();
            let after = b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(before && after) {
                return None;
            }
        } else {
            out.push(char::from(c));
        }
    }
    decimal_grammar(out.as_bytes()).then_some(Cow::Owned(out))
}

/// Whether `o` (no underscores) is `digits [. digits] [e [sign] digits]` with at least one mantissa digit.
fn decimal_grammar(o: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = o.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if o.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = o[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(o.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(o.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = o[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == o.len()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// [`csv_record`]'s fields as slices of `line` when the line holds no quote character and is short enough that
/// no field can reach the size limit: then every field is the text between commas with its leading spaces
/// (U+0020) skipped. `None` means "not decided here": call [`csv_record`].
#[allow(clippy::manual_pattern_char_comparison)]
pub(crate) fn csv_fields_fast(line: &str) -> Option<impl Iterator<Item = &str>> {
    // A char predicate, not the `','` pattern clippy prefers: fields are a few bytes long, and the `memchr` behind
    // a char pattern costs more than it finds. Measured with `--example eval_throughput`, interleaved at load 10:
    // strict evaluation at 102–109k rows/s with the predicate against 96–97k with `split(',')`.
    (line.len() <= CSV_FIELD_LIMIT && !line.as_bytes().contains(&b'"'))
        .then(|| line.split(|c: char| c == ',').map(|f| f.trim_start_matches(' ')))
}

/// One record of Python's `csv.reader([line], skipinitialspace=True)` (excel dialect: `,` delimiter, `"` quote
/// with doubling, no escape character, non-strict) for a line that holds no line break. Spaces (U+0020 only)
/// are skipped at the start of each field; a quote opens a quoted field only as the field's first character;
/// text after a closing quote is appended; an unterminated quoted field runs to the end of the line.
/// `None` where the reader raises (a field longer than the default field size limit).
pub fn csv_record(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut field_chars = 0usize;
    let mut state = CsvState::StartField;
    for c in line.chars() {
        let mut add = None;
        match state {
            CsvState::StartField => match c {
                '"' => state = CsvState::InQuoted,
                ' ' => {}
                ',' => fields.push(String::new()),
                _ => {
                    add = Some(c);
                    state = CsvState::InField;
                }
            },
            CsvState::InField => {
                if c == ',' {
                    fields.push(std::mem::take(&mut field));
                    field_chars = 0;
                    state = CsvState::StartField;
                } else {
                    add = Some(c);
                }
            }
            CsvState::InQuoted => {
                if c == '"' {
                    state = CsvState::QuoteInQuoted;
                } else {
                    add = Some(c);
                }
            }
            CsvState::QuoteInQuoted => match c {
                '"' => {
                    add = Some(c);
                    state = CsvState::InQuoted;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    field_chars = 0;
                    state = CsvState::StartField;
                }
                _ => {
                    add = Some(c);
                    state = CsvState::InField;
                }
            },
        }
        if let Some(c) = add {
            if field_chars >= CSV_FIELD_LIMIT {
                return None;
            }
            field.push(c);
            field_chars += 1;
        }
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn float_accepts_what_python_accepts() {
        assert_eq!(py_float("12"), Some(12.0));
        assert_eq!(py_float(" 35 "), Some(35.0));
        assert_eq!(py_float("\u{a0}35\t"), Some(35.0));
        assert_eq!(py_float("+541"), Some(541.0));
        assert_eq!(py_float("-3.5"), Some(-3.5));
        assert_eq!(py_float("62e0"), Some(62.0));
        assert_eq!(py_float("0.59e2"), Some(59.0));
        assert_eq!(py_float("1E+2"), Some(100.0));
        assert_eq!(py_float("1."), Some(1.0));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("007"), Some(7.0));
        assert_eq!(py_float("12_0"), Some(120.0));
        assert_eq!(py_float("1_0.2_5e1_0"), Some(10.25e10));
        assert_eq!(py_float("1e999"), Some(f64::INFINITY));
        assert_eq!(py_float("inf"), Some(f64::INFINITY));
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(py_float("iNF"), Some(f64::INFINITY));
        assert!(py_float("nan").is_some_and(f64::is_nan));
        assert!(py_float("-NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn float_rejects_what_python_rejects() {
        for s in [
            "", " ", ".", "e5", "1e", "1e+", "1__0", "_1", "1_", "1_.5", "1._5", "1_e5", "0x10", "in_f", "infinit",
            "nana", "--1", "+-1", "1 2", "1,5", "1.2.3", "+", "nan(1)",
        ] {
            assert_eq!(py_float(s), None, "{s:?}");
        }
        // Deliberate difference: Python also reads other Unicode decimal digits.
        assert_eq!(py_float("\u{661}\u{662}"), None);
    }

    fn rec(s: &str) -> Option<Vec<String>> {
        csv_record(s)
    }

    fn v(fields: &[&str]) -> Option<Vec<String>> {
        Some(fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn csv_matches_python_reader() {
        assert_eq!(rec("1,person,1,2"), v(&["1", "person", "1", "2"]));
        assert_eq!(rec(" 1 ,  a b , 3"), v(&["1 ", "a b ", "3"]));
        assert_eq!(rec("1,\"a, b\",3"), v(&["1", "a, b", "3"]));
        assert_eq!(rec("1, \"a\"\"b\",3"), v(&["1", "a\"b", "3"]));
        assert_eq!(rec("1,\"a\"x,3"), v(&["1", "ax", "3"]));
        assert_eq!(rec("1,a\"b\",3"), v(&["1", "a\"b\"", "3"]));
        assert_eq!(rec("1,\"a,b"), v(&["1", "a,b"]));
        assert_eq!(rec("1,,3,"), v(&["1", "", "3", ""]));
        assert_eq!(rec("1,\t2"), v(&["1", "\t2"]));
        assert_eq!(rec("1,  "), v(&["1", ""]));
        assert_eq!(rec("\"\""), v(&[""]));
        let long = "x".repeat(CSV_FIELD_LIMIT);
        assert_eq!(csv_record(&long).map(|v| v.len()), Some(1));
        assert_eq!(csv_record(&format!("{long}y")), None);
    }

    proptest! {
        /// The quote-free fast path equals the reader; the float fast path equals the general parse (of an unsigned
        /// body: the sign is handled before either).
        #[test]
        fn fast_paths_equal_general(line in "[ ,a1\"\t\u{a0}_.e-]{0,14}", num in "[0-9]{1,17}|[0-9_.e][0-9_.e+-]{0,7}") {
            if let Some(fast) = csv_fields_fast(&line) {
                let fast: Vec<String> = fast.map(str::to_string).collect();
                prop_assert_eq!(Some(fast), csv_record(&line));
            }
            let general = decimal_without_underscores(&num).and_then(|c| c.parse::<f64>().ok());
            prop_assert_eq!(py_float(&num).map(f64::to_bits), general.map(f64::to_bits));
        }
    }
}
