"""MS-SWIFT reward plugin backed by sgvlm: a drop-in for the reference plugins.

Point a paper-style GRPO run at this file (see docs/python.md for the full command)::

    swift rlhf --rlhf_type grpo \\
        --external_plugins "$(python -c 'import sgvlm.swift_plugin as p; print(p.__file__)')" \\
        --reward_funcs sgg_format_reward sgg_node_acc_reward ... sgg_diag_has_answer_tags \\
        --reward_weights 1 1 1 1 1 1 1 1 0 0 0 0 0

Importing it registers 13 ORMs in swift's registry (``swift.rewards.orms``, or ``swift.plugin.orms`` in older
ms-swift) under the reference's names. Each call returns one float per completion, with the function's weight
already applied, exactly as the reference plugins do.

Cost: swift calls the 13 functions one after another with the same ``completions`` and ``solution`` lists. The
first call scores the batch once with all 13 functions (in Rust, in parallel, without the GIL); the other 12
read the cached columns. The cache holds one batch and is checked by content (an O(n) identity-first list
comparison), so a changed batch is always rescored.

Settings: the reference's environment variables (``IMG_W``, ``EDGE_IOU_THRESH``, ``AG_SPATIAL_MAX``, ...), read
at each scoring. Schema: ``SGVLM_SCHEMA=triplet`` (PSG/PVSG, the default) or ``ag`` (Action Genome); the reference
ships one plugin file per schema, sgvlm one file for both.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sgvlm

try:  # ms-swift >= 4
    from swift.rewards import ORM, orms
except ImportError:  # older ms-swift
    from swift.plugin import ORM, orms  # type: ignore[no-redef]

__all__ = ["BatchScorer", "SCORER", "register"]


def _schema() -> str:
    return os.environ.get("SGVLM_SCHEMA", "triplet")


def _settings() -> Dict[str, str]:
    return {k: os.environ[k] for k in sgvlm.SETTINGS if k in os.environ}


class BatchScorer:
    """Scores a batch with all 13 functions once and serves each function's column from a one-batch cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Optional[Tuple[List[Any], List[Any], str, Dict[str, str]]] = None
        self._columns: Dict[str, List[float]] = {}
        #: Number of batches actually scored (for tests and logging).
        self.batches_scored = 0

    def column(self, name: str, completions: Sequence[Any], solution: Sequence[Any]) -> List[float]:
        schema, settings = _schema(), _settings()
        if not isinstance(completions, list):
            completions = list(completions)
        if not isinstance(solution, list):
            solution = list(solution)
        with self._lock:
            k = self._key
            if (
                k is None
                or k[2] != schema
                or k[3] != settings
                or len(k[0]) != len(completions)
                or k[0] != completions
                or k[1] != solution
            ):
                comps, sols = list(completions), list(solution)
                self._columns = sgvlm.rewards(comps, sols, schema, **settings)
                self._key = (comps, sols, schema, settings)
                self.batches_scored += 1
            return list(self._columns[name])


#: The scorer every registered ORM shares.
SCORER = BatchScorer()


def _make_orm(name: str) -> type:
    def __call__(self: Any, completions: Sequence[Any], solution: Sequence[Any], **kwargs: Any) -> List[float]:
        return SCORER.column(name, completions, solution)

    doc = f"``{name}``: one float per completion (sgvlm; values as the reference plugin's)."
    cls_name = "".join(part.capitalize() for part in name.split("_"))
    return type(cls_name, (ORM,), {"__call__": __call__, "__doc__": doc, "__module__": __name__})


def register() -> Dict[str, type]:
    """Registers the 13 ORMs under the reference names (idempotent); returns them."""
    classes = {name: _make_orm(name) for name in sgvlm.REWARD_NAMES}
    orms.update(classes)
    return classes


ORMS = register()
