"""sgvlm: SceneGraphVLM's scene-graph tools, implemented in Rust.

- ``validate(text, schema)``: the strict validity gate (the GRPO format reward).
- ``parse(text, schema, mode)``: the strict graph or the reward's lenient parse, as plain dicts.
- ``to_toon(graph, layout)`` / ``to_json(graph)``: TOON (paper, raw, spec layouts) and R1-SGG JSON.
- ``rewards(completions, solutions, schema, **settings)``: the 13 GRPO reward functions, one list each.
- ``evaluate(rows, schema, protocol, iou)``: strict PSG/PVSG or Action Genome SGDET metrics.
- ``sgvlm.swift_plugin``: the MS-SWIFT reward plugin (``--external_plugins``).

Results equal the ``sgvlm`` CLI's (and the reference implementation's, see docs/python.md).
"""

from ._sgvlm import (
    REWARD_NAMES,
    SETTINGS,
    InvalidGraphError,
    __version__,
    evaluate,
    parse,
    rewards,
    to_json,
    to_toon,
    validate,
)

__all__ = [
    "REWARD_NAMES",
    "SETTINGS",
    "InvalidGraphError",
    "__version__",
    "evaluate",
    "parse",
    "rewards",
    "to_json",
    "to_toon",
    "validate",
]
