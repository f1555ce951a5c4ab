"""External ids to dense slots, without an object per id."""

from __future__ import annotations

from array import array
from bisect import bisect_left


class DenseIds:
    """Any int64 ids, each given the next slot (0, 1, ...) on first sight.

    Two arrays sorted by id, searched by bisection, and the ids by slot: 20
    bytes an id, where a dict would hold two int objects and an entry. Ids
    mostly arrive in increasing order (orders), which appends.
    """

    def __init__(self) -> None:
        self._ids = array("q")
        self._slots = array("i")
        self._id_of = array("q")

    def __len__(self) -> int:
        return len(self._ids)

    def slot(self, id_: int) -> int:
        """The slot of ``id_``, made if new."""
        ids = self._ids
        if ids and ids[-1] == id_:
            return self._slots[-1]
        at = len(ids) if not ids or ids[-1] < id_ else bisect_left(ids, id_)
        if at < len(ids) and ids[at] == id_:
            return self._slots[at]
        slot = len(ids)
        ids.insert(at, id_)
        self._slots.insert(at, slot)
        self._id_of.append(id_)
        return slot

    def id_of(self, slot: int) -> int:
        return self._id_of[slot]
