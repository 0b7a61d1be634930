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
when the plugin is imported, as the reference reads them; call ``reload_settings()`` after changing them. Schema:
``SGVLM_SCHEMA=triplet`` (PSG/PVSG, the default) or ``ag`` (Action Genome); the reference ships one plugin file per
schema, sgvlm one file for both.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sgvlm

try:  # ms-swift >= 4
    from swift.rewards import ORM, orms
except ImportError:
    try:  # older ms-swift
        from swift.plugin import ORM, orms  # type: ignore[no-redef]
    except ImportError as e:
        raise ImportError(
            "sgvlm.swift_plugin registers reward functions with MS-SWIFT, which is not installed "
            "(pip install ms-swift); sgvlm.rewards() works without it"
        ) from e

__all__ = ["BatchScorer", "SCORER", "register", "reload_settings"]


class BatchScorer:
    """Scores a batch with all 13 functions once and serves each function's column from a one-batch cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Optional[Tuple[List[Any], List[Any]]] = None
        self._columns: Dict[str, List[float]] = {}
        #: Number of batches actually scored (for tests and logging).
        self.batches_scored = 0
        self.schema = "triplet"
        self.settings: Dict[str, str] = {}
        self.reload_settings()

    def reload_settings(self) -> None:
        """Reads ``SGVLM_SCHEMA`` and the reference's variables from the environment (and drops the cache)."""
        schema = os.environ.get("SGVLM_SCHEMA", "triplet")
        settings = {k: os.environ[k] for k in sgvlm.SETTINGS if k in os.environ}
        sgvlm.rewards([], [], schema, **settings)  # fail now, with the setting's name, not at the first step
        with self._lock:
            self.schema, self.settings, self._key = schema, settings, None

    def column(self, name: str, completions: Sequence[Any], solution: Sequence[Any]) -> List[float]:
        if not isinstance(completions, list):
            completions = list(completions)
        if not isinstance(solution, list):
            solution = list(solution)
        with self._lock:
            k = self._key
            # List equality checks identity first, so the 12 calls after the first cost O(n) pointer compares.
            if k is None or len(k[0]) != len(completions) or k[0] != completions or k[1] != solution:
                comps, sols = list(completions), list(solution)
                self._columns = sgvlm.rewards(comps, sols, self.schema, **self.settings)
                self._key = (comps, sols)
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


def reload_settings() -> None:
    """Re-reads the reward settings and ``SGVLM_SCHEMA`` from the environment."""
    SCORER.reload_settings()


ORMS = register()
