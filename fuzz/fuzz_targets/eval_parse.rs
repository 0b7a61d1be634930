//! The PSG/PVSG evaluation parser: never panics; boxes come out ordered; validity follows the parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::eval_parse;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some(g) = eval_parse::parse(s) {
        assert!(!g.objects.is_empty());
        for o in &g.objects {
            let [x1, y1, x2, y2] = o.bbox;
            assert!(!(x2 < x1) && !(y2 < y1), "{:?}", o.bbox);
        }
        assert!(eval_parse::sample_is_valid("x", s));
    } else {
        assert!(!eval_parse::sample_is_valid("x", s));
    }
});
