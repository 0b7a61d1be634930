//! The reward's lenient parser and answer extraction, both schemas: never panic; counters stay consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::{answer, lenient, Schema, StrictConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let cfg = StrictConfig::default();
    for schema in [Schema::Triplet, Schema::Ag] {
        let g = lenient::parse_completion(s, schema, &cfg);
        assert!(g.meta.invalid_ref + g.meta.invalid_pred <= g.meta.relation_lines);
        let f = g.meta.invalid_fraction();
        assert!((0.0..=1.0).contains(&f));
        for r in &g.relations {
            assert!(g.object(r.subj).is_some() && g.object(r.obj).is_some() && r.subj != r.obj);
        }
    }
    let _ = answer::has_answer_tags(s);
    let _ = answer::prepare_for_strict(s);
});
