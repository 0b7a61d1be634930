"""Type stubs of the compiled module ``sgvlm._sgvlm`` (re-exported by ``sgvlm``)."""

from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

__version__: str
#: The 13 reward functions in the reference's registration order; the first eight are weighted.
REWARD_NAMES: List[str]
#: Setting names accepted as keyword arguments (any case), the reference's environment variables.
SETTINGS: List[str]

Schema = Literal["triplet", "psg", "pvsg", "ag", "action-genome", "rel_pairs"]
Setting = Union[int, float, str, bool]
#: A completion as MS-SWIFT passes it: text, a message list (first message's ``content``) or a message dict.
Completion = Union[str, Sequence[Mapping[str, Any]], Mapping[str, Any]]

class InvalidGraphError(ValueError):
    """A text failed the strict gate (``parse(..., mode="strict")``)."""

    #: 1-based line of the problem, or None when it concerns the whole text.
    line: Optional[int]
    #: Stable error name, e.g. ``"count_mismatch"``.
    code: str

def validate(text: str, schema: Schema = "triplet", **settings: Setting) -> Tuple[bool, Optional[str]]:
    """Strict validity gate: ``(True, None)`` or ``(False, "line 4: ...")``."""

def parse(
    text: str,
    schema: Schema = "triplet",
    mode: Literal["strict", "lenient"] = "strict",
    **settings: Setting,
) -> Dict[str, Any]:
    """The graph as plain dicts; strict mode raises ``InvalidGraphError`` on an invalid text."""

def to_toon(graph: Union[Mapping[str, Any], str], layout: Literal["paper", "raw", "spec"] = "paper") -> str:
    """TOON text of a graph (a ``parse`` result or an R1-SGG JSON graph)."""

def to_json(graph: Union[Mapping[str, Any], str]) -> str:
    """R1-SGG JSON text of a triplet graph."""

def rewards(
    completions: Iterable[Completion],
    solutions: Iterable[Completion],
    schema: Schema = "triplet",
    protocol: Optional[Literal["paper", "sound"]] = None,
    **settings: Setting,
) -> Dict[str, List[float]]:
    """The 13 reward functions over a batch: ``{name: [value per completion]}``.

    ``protocol="sound"`` scores invalid completions below every valid one, leaves unmatchable GT relations out of
    recall and scores the gated answer; the default (``None``) follows the ``REWARD_PROTOCOL`` setting, ``paper``
    unless set."""

def evaluate(
    rows: Iterable[Union[Mapping[str, Any], str]],
    schema: Schema = "triplet",
    protocol: Literal["paper", "sound"] = "paper",
    iou: float = 0.5,
    **settings: Setting,
) -> Dict[str, Any]:
    """``{"summary": {...}, "per_sample": [{...}, ...]}`` as ``sgvlm eval`` computes them."""
