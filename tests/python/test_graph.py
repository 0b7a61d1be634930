"""``validate``, ``parse``, ``to_toon`` and ``to_json`` on exact values, and hostile inputs that must raise
ordinary exceptions (or nothing), never crash the interpreter."""

import json
import random

import pytest
import sgvlm

TEXT = (
    "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n"
    "rel[1]{subj,pred,obj}:\n1,riding,2\n</answer>\n"
)
AG = (
    "<answer>\n      obj[2]{id,name,x1,y1,x2,y2}:\n        1,person,10,10,200,400\n        2,table,150,200,600,470\n"
    "      rel_pairs[1]{subj,attention,spatial,contacting,obj}:\n        1,[looking_at],[in_front_of,behind],[],2\n"
    "</answer>\n"
)
GRAPH = {
    "schema": "triplet",
    "objects": [
        {"id": 1, "name": "person", "bbox": {"x1": 10, "y1": 10, "x2": 200, "y2": 400}},
        {"id": 2, "name": "horse", "bbox": {"x1": 150, "y1": 200, "x2": 600, "y2": 470}},
    ],
    "relations": [{"subj": 1, "pred": "riding", "obj": 2}],
}


def test_validate():
    assert sgvlm.validate(TEXT) == (True, None)
    assert sgvlm.validate(TEXT.replace("obj[2]", "obj[3]")) == (
        False,
        "line 2: header declares 3 objects but 2 object rows follow",
    )
    assert sgvlm.validate(AG, "ag") == (True, None)
    assert sgvlm.validate(AG, "triplet")[0] is False
    assert sgvlm.validate(TEXT, img_w=500)[0] is False


def test_parse_strict_and_errors():
    assert sgvlm.parse(TEXT) == GRAPH
    g = sgvlm.parse(AG, "ag")
    assert g["pairs"] == [
        {"subj": 1, "attention": ["looking_at"], "spatial": ["in_front_of", "behind"], "contacting": [], "obj": 2}
    ]
    with pytest.raises(sgvlm.InvalidGraphError) as e:
        sgvlm.parse(TEXT.replace("obj[2]", "obj[3]"))
    assert str(e.value) == "invalid: line 2: header declares 3 objects but 2 object rows follow"
    assert (e.value.line, e.value.code) == (2, "count_mismatch")
    assert isinstance(e.value, ValueError)
    with pytest.raises(ValueError, match=r"^unknown mode `loose` \(expected `strict` or `lenient`\)$"):
        sgvlm.parse(TEXT, mode="loose")


def test_parse_lenient():
    text = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,1,2,3,4\nrel[2]{subj,pred,obj}:\n1,on,9\nbad line\n"
    assert sgvlm.parse(text, mode="lenient") == {
        "schema": "triplet",
        "objects": [{"id": 1, "name": "person", "bbox": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}}],
        "relations": [],
        "meta": {
            "declared_objects": 2,
            "declared_relations": 2,
            "relation_lines": 2,
            "invalid_ref": 1,
            "invalid_pred": 1,
            "pairs": 0,
            "frac_invalid_rel": 1.0,
        },
    }
    rels = sgvlm.parse(AG, "ag", mode="lenient")["relations"]
    assert [r["pred"] for r in rels] == ["attention__looking_at", "spatial__in_front_of", "spatial__behind"]


def test_toon_and_json_round_trips():
    assert sgvlm.to_toon(GRAPH) == TEXT
    assert sgvlm.to_toon(sgvlm.parse(AG, "ag")) == AG
    assert sgvlm.to_toon(GRAPH, "raw") == (
        "obj[2]{id,name,x1,y1,x2,y2}:\n  1,person,10,10,200,400\n  2,horse,150,200,600,470\n"
        "rel[1]{subj,pred,obj}:\n  1,riding,2"
    )
    # Spec-conformant TOON: for triplet graphs the raw layout; AG pairs become list items.
    assert sgvlm.to_toon(GRAPH, "spec") == sgvlm.to_toon(GRAPH, "raw")
    assert sgvlm.to_toon(sgvlm.parse(AG, "ag"), "spec") == (
        "obj[2]{id,name,x1,y1,x2,y2}:\n  1,person,10,10,200,400\n  2,table,150,200,600,470\nrel_pairs[1]:\n"
        "  - subj: 1\n    attention[1]: looking_at\n    spatial[2]: in_front_of,behind\n    contacting: []\n"
        "    obj: 2"
    )
    js = sgvlm.to_json(GRAPH)
    assert js == (
        '{"objects":[{"id":"person.1","bbox":[10,10,200,400]},{"id":"horse.2","bbox":[150,200,600,470]}],'
        '"relationships":[{"subject":"person.1","predicate":"riding","object":"horse.2"}]}'
    )
    assert sgvlm.to_toon(json.loads(js)) == sgvlm.to_toon(js) == TEXT
    with pytest.raises(ValueError, match="R1-SGG JSON exists for the triplet schema only"):
        sgvlm.to_json(sgvlm.parse(AG, "ag"))
    with pytest.raises(ValueError, match=r"^not a scene graph: expected a dict with `schema`"):
        sgvlm.to_toon({"nodes": []})
    with pytest.raises(ValueError, match=r"^not a valid R1-SGG graph: missing `objects`$"):
        sgvlm.to_toon({"relationships": []})
    with pytest.raises(ValueError, match=r"^not a valid scene graph: "):
        sgvlm.to_toon({"schema": "triplet", "objects": "x"})
    with pytest.raises(ValueError, match=r"^unknown layout `fancy`"):
        sgvlm.to_toon(GRAPH, "fancy")


def test_hostile_inputs_never_crash():
    rng = random.Random(7)
    alphabet = list("<>/answerobj[]{}:,0123456789-\n \t\r\u2028\u00a0\u0661\ufeffrel_pairs") + ["\ud7ff", "é"]
    texts = ["", "\x00", "9" * 5000, TEXT * 50, TEXT.replace("10", "99999999999999999999999")]
    for _ in range(300):
        base = list(rng.choice([TEXT, AG]))
        for _ in range(rng.randint(1, 8)):
            base.insert(rng.randrange(len(base) + 1), rng.choice(alphabet))
        texts.append("".join(base))
    for t in texts:
        for schema in ("triplet", "ag"):
            ok, err = sgvlm.validate(t, schema)
            assert ok == (err is None)
            sgvlm.parse(t, schema, "lenient")
            try:
                g = sgvlm.parse(t, schema)
                assert sgvlm.validate(sgvlm.to_toon(g), schema) == (True, None)
            except sgvlm.InvalidGraphError:
                assert not ok
    cols = sgvlm.rewards(texts, list(reversed(texts)))
    assert all(len(c) == len(texts) for c in cols.values())
    sgvlm.rewards(texts, texts, "ag")
    sgvlm.evaluate([{"content": a, "predict": b} for a, b in zip(texts, reversed(texts))])
    sgvlm.evaluate([{"content": a, "predict": b} for a, b in zip(texts, reversed(texts))], "ag", "sound")


def test_lone_surrogates():
    """Not UTF-8: a direct argument raises; a batch item scores as the reference's error path."""
    with pytest.raises(UnicodeEncodeError):
        sgvlm.validate("\ud800")
    cols = sgvlm.rewards(["\ud800", TEXT], [TEXT, TEXT])
    assert [cols[k][0] for k in sgvlm.REWARD_NAMES] == [0.0] * 8 + [1.0, 0.0, 0.0, 0.0, 0.0]
    assert cols["sgg_format_reward"][1] == 0.5
