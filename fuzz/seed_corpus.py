#!/usr/bin/env python3
"""Writes the oracle completions into fuzz/corpus/<target>/ as seed inputs (the corpus itself is not committed)."""
import json, os, pathlib, sys

root = pathlib.Path(__file__).resolve().parent
shared = pathlib.Path(os.environ.get("SGVLM_SHARED", root.parent.parent / "shared"))
files = {"triplet": "rewards_triplet.jsonl", "ag": "rewards_ag.jsonl"}
targets = {"strict_triplet": ["triplet"], "strict_ag": ["ag"], "lenient": ["triplet", "ag"]}
targets.update({t: ["triplet", "ag"] for t in sys.argv[1:]})
for target, fams in targets.items():
    out = root / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for fam in fams:
        for line in (shared / "testdata/oracle" / files[fam]).read_text().split("\n"):
            if line:
                row = json.loads(line)
                for key in ("completion", "solution"):
                    (out / f"{row['id']}-{key}").write_text(row[key])
                    n += 1
    print(f"{target}: {n} seeds")
