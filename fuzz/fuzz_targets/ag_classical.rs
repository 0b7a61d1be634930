//! The Action Genome classical parser: never panics; ground-truth triplets index real objects and predicates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sgvlm_graph::{ag_classical, vocab};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some(f) = ag_classical::parse(s) {
        let n = f.objects.len();
        for t in f.gt_triplets() {
            assert!(t.pred < vocab::AG_PREDICATES.len());
            assert!(t.subj < n.max(1) && t.obj < n.max(1));
        }
        let counts: usize = f.gt_class_counts().iter().sum();
        assert_eq!(counts, f.gt_triplets().len());
    }
    let _ = ag_classical::sample_status(s, s);
});
