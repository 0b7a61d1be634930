"""Reward parity with the reference plugins through ``sgvlm.rewards``: every oracle row, all 13 values within 2e-9.

The only rows allowed to differ are the documented Unicode kinds (in practice the three ``unicode_digits`` rows);
the test prints them and fails on any other difference.
"""

import pytest
import sgvlm
from conftest import TOL, UNICODE_KINDS, oracle_rows

FAMILIES = [("rewards_triplet.jsonl", "triplet", 715), ("rewards_ag.jsonl", "ag", 364)]


def mismatches(rows, columns):
    """(unexpected, excepted) lists of 'id (kind): name ours … reference …' lines."""
    unexpected, excepted = [], []
    for i, row in enumerate(rows):
        bad = [
            f"{name}: ours {columns[name][i]!r} reference {row['expected'][name]!r}"
            for name in sgvlm.REWARD_NAMES
            if abs(columns[name][i] - row["expected"][name]) > TOL
        ]
        if bad:
            line = f"{row['id']} ({row['kind']}): " + "; ".join(bad)
            (excepted if row["kind"] in UNICODE_KINDS else unexpected).append(line)
    return unexpected, excepted


@pytest.mark.parametrize("file,schema,n", FAMILIES)
def test_every_oracle_row_in_one_batch(file, schema, n):
    rows = oracle_rows(file)
    assert len(rows) == n
    cols = sgvlm.rewards([r["completion"] for r in rows], [r["solution"] for r in rows], schema)
    assert list(cols) == sgvlm.REWARD_NAMES
    assert all(len(c) == n for c in cols.values())
    unexpected, excepted = mismatches(rows, cols)
    print(f"{file}: {n - len(unexpected) - len(excepted)}/{n} rows match; documented exceptions: {excepted}")
    assert unexpected == []


def test_exactly_the_three_unicode_digit_rows_differ():
    kinds = []
    for file, schema, _ in FAMILIES:
        rows = oracle_rows(file)
        cols = sgvlm.rewards([r["completion"] for r in rows], [r["solution"] for r in rows], schema)
        kinds += [line.split(" (")[1].split(")")[0] for line in mismatches(rows, cols)[1]]
    assert kinds == ["unicode_digits"] * 3


@pytest.mark.parametrize("file,schema,n", FAMILIES)
def test_batches_of_one_equal_the_big_batch(file, schema, n):
    """The oracle's values are for batches of size 1; one big batch (deduplicated solutions, rayon) must agree."""
    rows = oracle_rows(file)
    big = sgvlm.rewards([r["completion"] for r in rows], [r["solution"] for r in rows], schema)
    for i, r in enumerate(rows):
        one = sgvlm.rewards([r["completion"]], [r["solution"]], schema)
        assert {k: v[0] for k, v in one.items()} == {k: v[i] for k, v in big.items()}, r["id"]


def test_messages_are_coerced_as_the_reference_does():
    row = oracle_rows("rewards_triplet.jsonl")[2]
    c, s = row["completion"], row["solution"]
    plain = sgvlm.rewards([c], [s])
    as_list = sgvlm.rewards([[{"role": "assistant", "content": c}, {"role": "user", "content": "ignored"}]], [s])
    as_dict = sgvlm.rewards([{"role": "assistant", "content": c}], [{"content": s}])
    as_tuple = sgvlm.rewards(({"content": c},), (s,))
    assert plain == as_list == as_dict == as_tuple


def test_unreadable_items_score_as_the_reference_error_path():
    ok = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>"
    cols = sgvlm.rewards([7, [], [{"role": "assistant"}], None, ok], [ok, ok, ok, ok, 3.5])
    failed = [0.0] * 8 + [1.0, 0.0, 0.0, 0.0, 0.0]
    for i in range(5):
        assert [cols[k][i] for k in sgvlm.REWARD_NAMES] == failed


def test_valid_completion_exact_values():
    sol = (
        "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n"
        "rel[1]{subj,pred,obj}:\n1,riding,2\n</answer>\n"
    )
    cols = sgvlm.rewards([sol, "no answer"], [sol, sol])
    assert {k: v[0] for k, v in cols.items()} == {
        "sgg_format_reward": 0.5,
        "sgg_node_acc_reward": 1.5,
        "sgg_node_box_reward": 1.5,
        "sgg_edge_hard_reward": 3.0,
        "sgg_edge_precision_reward": 1.0,
        "sgg_edge_f1_reward": 2.0,
        "sgg_obj_hallucination_penalty": -0.0,
        "sgg_edge_hallucination_penalty": -0.0,
        "sgg_diag_frac_no_rel": 0.0,
        "sgg_diag_num_pred_objs": 2.0,
        "sgg_diag_num_pred_rels": 1.0,
        "sgg_diag_frac_invalid_rel": 0.0,
        "sgg_diag_has_answer_tags": 1.0,
    }
    assert [cols[k][1] for k in sgvlm.REWARD_NAMES] == [0.0] * 8 + [1.0, 0.0, 0.0, 0.0, 0.0]
    # Settings by the reference's variable names, any case.
    heavy = sgvlm.rewards([sol], [sol], format_reward_weight=2, EDGE_REWARD_WEIGHT="4.5")
    assert (heavy["sgg_format_reward"], heavy["sgg_edge_hard_reward"]) == ([2.0], [4.5])
    small = sgvlm.rewards([sol], [sol], img_w=100)  # boxes no longer fit: the gate fails
    assert small["sgg_format_reward"] == [0.0]


def test_sound_protocol():
    sol = (
        "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n"
        "3,traffic light,0,0,50,50\nrel[2]{subj,pred,obj}:\n1,riding,2\n3,over,1\n</answer>"
    )
    good = (
        "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n"
        "rel[1]{subj,pred,obj}:\n1,riding,2\n</answer>"
    )
    comps, sols = [good, "no answer"], [sol, sol]
    paper = sgvlm.rewards(comps, sols)
    sound = sgvlm.rewards(comps, sols, protocol="sound")
    assert paper == sgvlm.rewards(comps, sols, protocol="paper")
    # The GT relation on `traffic light` can never be matched: out of n_gt under `sound`.
    assert (paper["sgg_edge_hard_reward"][0], sound["sgg_edge_hard_reward"][0]) == (1.5, 3.0)
    # An invalid completion: 0 in paper, below every valid completion in sound.
    total = lambda cols, i: sum(cols[k][i] for k in sgvlm.REWARD_NAMES[:8])  # noqa: E731
    assert (total(paper, 1), total(sound, 1)) == (0.0, -2.5)
    assert sound["sgg_format_reward"][1] == -0.5
    # The protocol is also a setting (the plugin reads REWARD_PROTOCOL from the environment).
    assert sgvlm.rewards(comps, sols, reward_protocol="sound") == sound
    with pytest.raises(ValueError, match=r"^unknown protocol `loose` \(expected `paper` or `sound`\)$"):
        sgvlm.rewards([], [], protocol="loose")


def test_argument_errors():
    with pytest.raises(ValueError, match=r"^completions and solutions differ in length \(2 and 1\)$"):
        sgvlm.rewards(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"^unknown schema `nope` \(expected `triplet` or `ag`\)$"):
        sgvlm.rewards([], [], "nope")
    with pytest.raises(ValueError, match=r"^unknown reward setting `bogus` \(known: IMG_W, "):
        sgvlm.rewards([], [], bogus=1)
    with pytest.raises(ValueError, match=r'^EDGE_IOU_THRESH: expected a finite number, found "high"$'):
        sgvlm.rewards([], [], edge_iou_thresh="high")
    with pytest.raises(TypeError, match="must be a list, not a single string"):
        sgvlm.rewards("abc", "abc")
    with pytest.raises(TypeError, match="img_w: expected a number, string or bool, found list"):
        sgvlm.rewards([], [], img_w=[1])
    assert sgvlm.rewards([], []) == {k: [] for k in sgvlm.REWARD_NAMES}
