//! The incremental validator against the strict gate, both schemas:
//! - sound: whatever it calls complete, the gate accepts;
//! - complete on its language (ASCII, starting with `<answer>\n`, `\n`/`\r\n` line ends, no other control bytes,
//!   no end tokens): whatever the gate accepts there, it calls complete;
//! - feeding byte by byte gives the same verdict as feeding the whole text; `allows(byte)` predicts each `feed`,
//!   and the allowed-next-byte set agrees with `allows`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::incremental::{Status, Validator, ValidatorConfig};
use sgvlm_graph::{strict, Schema, StrictConfig};

fn in_language(s: &str) -> bool {
    let b = s.as_bytes();
    s.is_ascii()
        && s.starts_with("<answer>\n")
        && !s.contains("<|")
        && b.iter().enumerate().all(|(i, &c)| match c {
            b'\r' => b.get(i + 1) == Some(&b'\n'),
            b'\n' | b'\t' => true,
            c => c >= 0x20 && c != 0x7f,
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for schema in [Schema::Triplet, Schema::Ag] {
        let cfg = ValidatorConfig { strict: StrictConfig::default(), ..Default::default() };
        let mut whole = Validator::new(schema, cfg.clone()).expect("default config");
        let verdict = whole.feed(s.as_bytes());
        let complete = matches!(verdict, Ok(Status::Complete));
        let valid = strict::is_valid(s, schema, &StrictConfig::default());
        if complete {
            assert!(valid, "validator accepted what the gate rejects: {s:?}");
        }
        if valid && in_language(s) {
            assert!(complete, "validator rejected a valid text in its language: {s:?} ({verdict:?})");
        }
        let mut step = Validator::new(schema, cfg).expect("default config");
        let mut last = Ok(Status::Incomplete);
        for (k, &byte) in s.as_bytes().iter().enumerate() {
            // `allows` (no mutation) must predict `feed`; the 256-bit next-byte set is checked every 64 bytes.
            let allowed = step.allows(&[byte]);
            if k % 64 == 0 {
                assert_eq!(step.allowed_next_bytes().contains(byte), allowed);
            }
            last = step.feed(&[byte]);
            assert_eq!(allowed, last.is_ok());
            if last.is_err() {
                break;
            }
        }
        assert_eq!(last.is_ok() && step.is_complete(), complete);
    }
});
