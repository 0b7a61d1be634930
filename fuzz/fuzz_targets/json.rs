//! The R1-SGG JSON reader: never panics; whatever it reads writes back to JSON that reads as the same graph.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::json;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(g) = json::from_r1sgg_str(s) {
        let again = json::to_r1sgg_string(&g);
        assert_eq!(json::from_r1sgg_str(&again).as_ref(), Ok(&g));
    }
});
