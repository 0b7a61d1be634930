//! Strict gate, Action Genome schema: never panics; accepted graphs respect the caps, have a person subject, and
//! round-trip through the paper layout.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::{strict, toon, StrictConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let cfg = StrictConfig::default();
    if let Ok(g) = strict::parse_ag(s, &cfg) {
        for p in &g.pairs {
            assert!(p.attention.len() <= 1 && p.spatial.len() <= 5 && p.contacting.len() <= 4);
            assert!(p.label_count() > 0 && p.subj != p.obj);
        }
        let again = toon::encode_paper(&g.clone().into());
        assert_eq!(strict::parse_ag(&again, &cfg).as_ref(), Ok(&g));
    }
});
