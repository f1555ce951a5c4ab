"""External ids to dense slots, without an object per id."""

from __future__ import annotations

from array import array
from bisect import bisect_left


class DenseIds:
    """Any int64 ids, each given the next slot (0, 1, ...) on first sight.

    Two arrays sorted by id, searched by bisection: 12 bytes an id, where a
    dict would hold two int objects and an entry. Ids mostly arrive in
    increasing order (orders), which appends.
    """

    def __init__(self) -> None:
        self._ids = array("q")
        self._slots = array("i")
        # The ids by slot, made on the first id_of() call: rarely needed, and
        # a third array growing beside the others during a load fragments
        # the heap (9 MB more peak RSS at 1M purchases).
        self._id_of: array[int] | None = None

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
        if self._id_of is not None:
            self._id_of.append(id_)
        return slot

    def is_greatest(self, id_: int) -> bool:
        """Whether ``id_`` is the greatest id seen so far."""
        return bool(self._ids) and self._ids[-1] == id_

    def id_of(self, slot: int) -> int:
        if self._id_of is None:
            id_of = array("q", bytes(self._ids.itemsize * len(self._ids)))
            for id_, at in zip(self._ids, self._slots, strict=True):
                id_of[at] = id_
            self._id_of = id_of
        return self._id_of[slot]
