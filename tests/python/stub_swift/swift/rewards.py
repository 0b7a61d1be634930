"""Stand-in for ``swift.rewards``: the ``ORM`` base class and the ``orms`` registry the trainer reads."""

from typing import Any, Dict, List


class ORM:
    """Outcome reward model: called with the batch's completions and dataset columns, returns one float each."""

    def __call__(self, completions: List[Any], **kwargs: Any) -> List[float]:
        raise NotImplementedError


#: name -> ORM subclass; swift instantiates ``orms[name]()`` for each ``--reward_funcs`` entry.
orms: Dict[str, type] = {}
