//! Strict gate, triplet schema: never panics; the fast path equals the general path; whatever it accepts re-encodes (paper layout) to a text it accepts
//! as the same graph, and the lenient parser reads the same relations from the gated answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::{answer, lenient, strict, toon, Schema, StrictConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let cfg = StrictConfig::default();
    // The single-pass fast path must agree with the general parser, errors included.
    let general = strict::parse_triplet_general(s, &cfg);
    assert_eq!(strict::is_valid(s, sgvlm_graph::Schema::Triplet, &cfg), general.is_ok());
    assert_eq!(strict::parse_triplet(s, &cfg), general);
    if let Ok(g) = strict::parse_triplet(s, &cfg) {
        let again = toon::encode_paper(&g.clone().into());
        assert_eq!(strict::parse_triplet(&again, &cfg).as_ref(), Ok(&g));
        // Parsed from the gate's view of the text: on the raw text the reward reads the first <answer> block,
        // which may sit inside the think block (a reference quirk kept for parity).
        let l = lenient::parse_completion(answer::prepare_for_strict(s), Schema::Triplet, &cfg);
        assert_eq!(l.relations.len(), g.relations.len());
        assert!(g.objects.iter().all(|o| cfg.canvas.contains(&o.bbox)));
    }
});
