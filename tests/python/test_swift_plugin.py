"""The MS-SWIFT plugin against a stand-in ``swift`` package: registration under the reference names, oracle
parity through the ORM call interface, message-list completions, and one Rust scoring per batch."""

import pytest
import sgvlm
from conftest import TOL, UNICODE_KINDS, oracle_rows


def call_all(plugin, completions, solution, **extra):
    """What swift's GRPO trainer does each step: every registered function on the same lists."""
    from swift.rewards import orms

    return {name: orms[name]()(completions, solution=solution, **extra) for name in sgvlm.REWARD_NAMES}


def test_registers_the_13_reference_names(swift_plugin):
    from swift.rewards import ORM, orms

    assert sorted(orms) == sorted(sgvlm.REWARD_NAMES)
    assert all(issubclass(orms[n], ORM) for n in sgvlm.REWARD_NAMES)
    assert orms["sgg_format_reward"].__name__ == "SggFormatReward"


@pytest.mark.parametrize("file,schema", [("rewards_triplet.jsonl", "triplet"), ("rewards_ag.jsonl", "ag")])
def test_oracle_rows_through_the_plugin(swift_plugin, monkeypatch, file, schema):
    monkeypatch.setenv("SGVLM_SCHEMA", schema)
    swift_plugin.reload_settings()
    rows = oracle_rows(file)
    before = swift_plugin.SCORER.batches_scored
    unexpected, excepted, batches = [], [], 0
    for start in range(0, len(rows), 12):  # GRPO-sized batches, completions as message lists
        chunk = rows[start : start + 12]
        comps = [[{"role": "assistant", "content": r["completion"]}] for r in chunk]
        sols = [r["solution"] for r in chunk]
        got = call_all(swift_plugin, comps, sols, trainer_state=None, images=[None] * len(chunk))
        batches += 1
        for i, r in enumerate(chunk):
            bad = [n for n in sgvlm.REWARD_NAMES if abs(got[n][i] - r["expected"][n]) > TOL]
            if bad:
                (excepted if r["kind"] in UNICODE_KINDS else unexpected).append(f"{r['id']} ({r['kind']}): {bad}")
        assert all(isinstance(v, float) for col in got.values() for v in col)
    assert unexpected == []
    assert all("(unicode_digits)" in e for e in excepted)
    # All 13 functions of a step share one Rust call.
    assert swift_plugin.SCORER.batches_scored - before == batches


def test_a_changed_batch_is_rescored(swift_plugin):
    sol = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>"
    from swift.rewards import orms

    fmt = orms["sgg_format_reward"]()
    comps = [sol, "junk"]
    assert fmt(comps, solution=[sol, sol]) == [0.5, 0.0]
    comps[1] = sol  # same list object, new content
    assert fmt(comps, solution=[sol, sol]) == [0.5, 0.5]
    n = swift_plugin.SCORER.batches_scored
    assert fmt(tuple(comps), solution=(sol, sol)) == [0.5, 0.5]  # same content: cached
    assert swift_plugin.SCORER.batches_scored == n


def test_settings_come_from_the_environment(swift_plugin, monkeypatch):
    sol = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>"
    from swift.rewards import orms

    fmt = orms["sgg_format_reward"]()
    assert fmt([sol], solution=[sol]) == [0.5]
    monkeypatch.setenv("FORMAT_REWARD_WEIGHT", "0.25")
    assert fmt([sol], solution=[sol]) == [0.5]  # read at import, as the reference plugin does
    swift_plugin.reload_settings()
    assert fmt([sol], solution=[sol]) == [0.25]
    monkeypatch.setenv("IMG_W", "20")
    swift_plugin.reload_settings()
    assert fmt([sol], solution=[sol]) == [0.0]
    monkeypatch.delenv("IMG_W")
    monkeypatch.setenv("REWARD_PROTOCOL", "sound")
    swift_plugin.reload_settings()
    assert fmt(["not a graph"], solution=[sol]) == [-0.25]  # sound: an invalid completion loses the format weight
    monkeypatch.delenv("REWARD_PROTOCOL")
    monkeypatch.setenv("IMG_W", "20")
    monkeypatch.setenv("EDGE_IOU_THRESH", "high")
    with pytest.raises(ValueError, match=r'^EDGE_IOU_THRESH: expected a finite number, found "high"$'):
        swift_plugin.reload_settings()
    monkeypatch.delenv("EDGE_IOU_THRESH")
    monkeypatch.delenv("IMG_W")
    monkeypatch.delenv("FORMAT_REWARD_WEIGHT")
    swift_plugin.reload_settings()


def test_without_swift_the_import_error_says_what_to_install(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "swift" or m.startswith("swift.") or m == "sgvlm.swift_plugin"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "swift", None)  # import swift -> ImportError
    with pytest.raises(ImportError, match=r"MS-SWIFT, which is not installed \(pip install ms-swift\)"):
        import sgvlm.swift_plugin  # noqa: F401
