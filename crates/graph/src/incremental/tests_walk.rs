//! Random walks through the accepted language: starting from nothing, repeatedly feed a random byte the validator
//! announces as allowed. Every viable prefix must have a continuation other than padding whitespace (the decoding
//! engine never offers spaces, tabs or `\r`), and every walk that completes must pass the strict gate. Closed
//! vocabularies with shared prefixes and small counts make exhausted subjects and predicates likely; they come
//! with canonical numbers, as in the decoding engine.

use super::*;
use crate::strict;
use proptest::prelude::*;

/// SplitMix64: enough randomness for choosing bytes, without a dependency.
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn config(schema: Schema, closed: bool, n: usize, m: usize) -> ValidatorConfig {
    let mut cfg = ValidatorConfig { canonical_numbers: closed, ..ValidatorConfig::default() };
    cfg.strict.canvas = crate::Canvas::new(12, 9);
    cfg.strict.max_objects = n;
    cfg.strict.max_relations = m;
    if closed {
        cfg.names = Some(Vocab::new(["person", "pen", "cup", "cup-top"]));
        match schema {
            Schema::Triplet => cfg.predicates = Some(Vocab::new(["on", "over", "in"])),
            Schema::Ag => {
                cfg.ag_labels = [
                    Some(Vocab::new(["looking_at", "not_looking"])),
                    Some(Vocab::new(["in", "in_front_of", "on"])),
                    Some(Vocab::new(["holding"])),
                ]
            }
        }
    }
    cfg
}

/// Walks from an empty text with `rng`; returns the text and whether it completed, or the dead-end prefix (or a
/// byte allowed outside `Validator::probe_hint`).
fn random_walk(
    schema: Schema,
    cfg: &ValidatorConfig,
    rng: &mut Mix,
    max_bytes: usize,
) -> Result<(String, bool), String> {
    let mut v = Validator::new(schema, cfg.clone()).map_err(|e| e.to_string())?;
    let mut text = Vec::new();
    while text.len() < max_bytes && !v.is_complete() {
        let next = v.allowed_next_bytes();
        let hint = v.probe_hint(&v.probe());
        if let Some(b) = next.iter().find(|&b| !hint.contains(b)) {
            return Err(format!(
                "byte {b:#04x} allowed but not in the probe hint at {:?}",
                String::from_utf8_lossy(&text)
            ));
        }
        let allowed: Vec<u8> = next.iter().filter(|b| !matches!(b, b' ' | b'\t' | b'\r')).collect();
        if allowed.is_empty() {
            return Err(String::from_utf8_lossy(&text).into_owned());
        }
        // Prefer leaving a label or number early so that walks reach the relation rows.
        let structural: Vec<u8> = allowed.iter().copied().filter(|b| !b.is_ascii_alphanumeric()).collect();
        let b = if !structural.is_empty() && rng.below(5) < 2 {
            structural[rng.below(structural.len())]
        } else {
            allowed[rng.below(allowed.len())]
        };
        v.feed(&[b]).map_err(|e| format!("announced byte refused: {e}"))?;
        text.push(b);
    }
    Ok((String::from_utf8_lossy(&text).into_owned(), v.is_complete()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("INC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

    #[test]
    fn random_walks_never_dead_end(
        seed in any::<u64>(),
        ag in any::<bool>(),
        closed in any::<bool>(),
        n in 1usize..5,
        m in 0usize..14,
    ) {
        let schema = if ag { Schema::Ag } else { Schema::Triplet };
        let cfg = config(schema, closed, n, m);
        let mut rng = Mix(seed);
        let (text, done) = random_walk(schema, &cfg, &mut rng, 4000).map_err(|p| TestCaseError::fail(format!("dead end after {p:?}")))?;
        if done {
            prop_assert!(strict::is_valid(&text, schema, &cfg.strict), "strict gate refuses {:?}", text);
        }
    }
}

/// The walks above are not vacuous: with closed lists most of them finish, many after a subject ran out of pairs.
#[test]
fn closed_walks_mostly_finish_and_exhaust_subjects() {
    for schema in [Schema::Triplet, Schema::Ag] {
        let (mut done, mut exhausted) = (0, 0);
        for seed in 0..200u64 {
            let cfg = config(schema, true, 3, 13);
            let mut v = Validator::new(schema, cfg.clone()).unwrap();
            let (text, finished) = random_walk(schema, &cfg, &mut Mix(seed), 4000).unwrap();
            done += finished as u32;
            v.feed_str(&text).unwrap();
            exhausted += !v.cur.full.is_empty() as u32;
        }
        eprintln!("{schema:?}: {done}/200 finished, {exhausted} with an exhausted subject");
        assert!(done >= 100, "{schema:?}: only {done} of 200 walks finished");
        assert!(exhausted >= 10, "{schema:?}: only {exhausted} walks exhausted a subject");
    }
}
