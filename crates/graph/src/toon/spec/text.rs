//! Scalars as TOON text: canonical numbers (§2), string quoting (§7.2), escapes (§7.1), keys (§7.3).

use serde_json::Number;

/// Canonical number form (§2): integers as written, floats shortest-round-trip without exponent in
/// `[1e-6, 1e21)`, `-0` as `0`, JSON exponent form outside that range.
pub fn push_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(itoa::Buffer::new().format(u));
    } else if let Some(i) = n.as_i64() {
        out.push_str(itoa::Buffer::new().format(i));
    } else if let Some(f) = n.as_f64() {
        let a = f.abs();
        if !f.is_finite() {
            out.push_str("null");
        } else if a == 0.0 {
            out.push('0');
        } else if (1e-6..1e21).contains(&a) {
            out.push_str(&format!("{f}"));
        } else {
            out.push_str(&format!("{f:e}"));
        }
    }
}

/// Whether a string value must be quoted against delimiter `d` (§7.2).
pub fn needs_quotes(s: &str, d: char) -> bool {
    s.is_empty()
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t'])
        || matches!(s, "true" | "false" | "null")
        || numeric_like(s)
        || s.starts_with(['-', '#'])
        || s.chars().any(|c| matches!(c, ':' | '"' | '\\' | '[' | ']' | '{' | '}') || c < ' ' || c == d)
}

/// `^[+-]?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$`, case-insensitive.
fn numeric_like(s: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let n = digits(&b[i..]);
    if n == 0 {
        return false;
    }
    i += n;
    if b.get(i) == Some(&b'.') {
        let n = digits(&b[i + 1..]);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

pub(super) fn push_string(out: &mut String, s: &str, d: char) {
    if needs_quotes(s, d) {
        push_quoted(out, s);
    } else {
        out.push_str(s);
    }
}

/// Keys are bare only when they match `^[A-Za-z_][A-Za-z0-9_.]*$` (§7.3).
pub(super) fn push_key(out: &mut String, k: &str) {
    let mut cs = k.chars();
    let bare = cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if bare {
        out.push_str(k);
    } else {
        push_quoted(out, k);
    }
}

/// `"…"` with the escapes of §7.1 (other C0 controls as lowercase `\u00xx`).
pub(super) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
