"""``sgvlm.evaluate`` against the oracle: strict PSG/PVSG per-sample metrics and summary, Action Genome SGDET
per-sample metrics and summary (``expected_stable_ties``)."""

import json
import warnings

import pytest
import sgvlm
from conftest import TOL, UNICODE_KINDS, diff, oracle_json, oracle_rows

MEANS = {
    "Obj_P@50_strict": "strict_precision_objects",
    "Obj_Recall_strict": "strict_recall_objects",
    "Obj_F1_strict": "strict_f1_objects",
    "Rel_P@50_strict": "strict_precision_relations",
    "Rel_Recall_strict": "strict_recall_relations",
    "Rel_F1_strict": "strict_f1_relations",
    "SGG_Score_strict": "strict_sgg_score",
}


def test_triplet_rows_and_summary():
    rows = oracle_rows("eval_triplet.jsonl")
    out = sgvlm.evaluate(rows, "triplet", "paper", 0.5)
    per, summary = out["per_sample"], out["summary"]
    assert len(per) == len(rows) == 715
    allowed, ties, unexpected = [], [], []
    for row, got in zip(rows, per):
        assert got.pop("status") in ("scored", "failed")
        d = diff(row["expected"], got)
        if not d:
            continue
        if row["kind"] in UNICODE_KINDS:
            allowed.append(row)
        elif row["tie_sensitive"]:
            ties.append(row["id"])
        else:
            unexpected.append(f"{row['id']} ({row['kind']}): {d}")
    assert unexpected == []
    assert ties == []
    assert len(allowed) == 5

    oracle = oracle_json("eval_triplet_summary.json")["expected"]
    # Everything but the means is exact; each mean differs from the oracle's by exactly the allowed rows' share.
    means = {k: summary.pop(k) for k in list(summary) if k.startswith(("Obj_", "Rel_", "SGG_"))}
    oracle_means = {k: oracle.pop(k) for k in list(oracle) if k.startswith(("Obj_", "Rel_", "SGG_"))}
    valid_shift = sum(int(per[rows.index(r)]["toon_valid"]) - int(r["expected"]["toon_valid"]) for r in allowed)
    oracle["num_valid_toon"] += valid_shift
    oracle["num_invalid_toon"] -= valid_shift
    oracle["invalid_rate_pct"] = 100.0 * oracle["num_invalid_toon"] / oracle["num_samples"]
    assert diff(oracle, summary) == []
    n = len(rows)
    for key, metric in MEANS.items():
        shift = sum(per[rows.index(r)][metric] - r["expected"][metric] for r in allowed) / n
        assert abs(means[key] - (oracle_means[key] + shift)) <= TOL, key
        twin = key.replace("_strict", "_Qwen" if "P@50" in key or "Recall" in key else "_qwen")
        assert means[twin] == means[key]


def test_ag_rows_and_summary():
    rows = oracle_rows("eval_ag.jsonl")
    out = sgvlm.evaluate(rows, schema="ag")
    bad = [f"{r['id']}: {d}" for r, got in zip(rows, out["per_sample"]) if (d := diff(r["expected_stable_ties"], got))]
    assert bad == []
    assert diff(oracle_json("eval_ag_summary.json")["expected_stable_ties"], out["summary"]) == []


def test_json_lines_equal_dicts_and_bad_rows_warn():
    rows = oracle_rows("eval_triplet.jsonl")[:20]
    lines = [json.dumps(r) + "\n" for r in rows]
    assert sgvlm.evaluate(lines) == sgvlm.evaluate(rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = sgvlm.evaluate([{"content": rows[0]["content"]}, 42, "{oops"])
    assert [str(w.message).split(";")[0] for w in caught] == [
        "row 0: no prediction (`predict`, a `conversations` turn from `predict`, or an assistant message)",
        "row 1: not a JSON object",
        "row 2: not valid JSON: key must be a string at line 1 column 2",
    ]
    assert [p["status"] for p in out["per_sample"]] == ["failed"] * 3
    assert out["summary"]["num_samples"] == 3


def test_sound_protocol_and_arguments():
    rows = [{"content": "", "predict": "x"}]
    assert sgvlm.evaluate(rows, protocol="sound")["per_sample"][0]["status"] == "skip_gt"
    assert sgvlm.evaluate(rows, protocol="sound")["summary"]["num_skip_gt"] == 1
    with pytest.raises(ValueError, match=r"^iou must be a number in \[0, 1\], not 1.5$"):
        sgvlm.evaluate([], iou=1.5)
    with pytest.raises(ValueError, match=r"^unknown protocol `fair` \(expected `paper` or `sound`\)$"):
        sgvlm.evaluate([], protocol="fair")
