"""External ids to dense slots, without an object per id."""

from __future__ import annotations

from array import array
from bisect import bisect_left

from recommender.blocks import NONE

# Bytes of an array("i") whose every item is NONE (-1: all bits set).
_NONE_BYTE = b"\xff"


class DenseIds:
    """Any int64 ids, each given the next slot (0, 1, ...) on first sight.

    Two arrays sorted by id, searched by bisection: 12 bytes an id, where a
    dict would hold two int objects and an entry. Ids mostly arrive in
    increasing order (orders), which appends; then each id's slot is its
    place, and the slots' array is made only once an id arrives out of
    order (8 bytes an id until then).
    """

    def __init__(self) -> None:
        self._ids = array("q")
        # None while every id arrived in increasing order: slot == place.
        self._slots: array[int] | None = None
        # The ids by slot, made on the first id_of() call once ids arrived out
        # of order: rarely needed, and a third array growing beside the others
        # during a load fragments the heap (9 MB more peak RSS at 1M purchases).
        self._id_of: array[int] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def slot(self, id_: int) -> int:
        """The slot of ``id_``, made if new."""
        ids = self._ids
        if not ids or ids[-1] < id_:
            slot = len(ids)
            ids.append(id_)
            if self._slots is not None:
                self._slots.append(slot)
            if self._id_of is not None:
                self._id_of.append(id_)
            return slot
        at = len(ids) - 1 if ids[-1] == id_ else bisect_left(ids, id_)
        if ids[at] == id_:
            return at if self._slots is None else self._slots[at]
        slot = len(ids)
        if self._slots is None:
            self._slots = array("i", range(slot))
        ids.insert(at, id_)
        self._slots.insert(at, slot)
        if self._id_of is not None:
            self._id_of.append(id_)
        return slot

    def is_greatest(self, id_: int) -> bool:
        """Whether ``id_`` is the greatest id seen so far."""
        return bool(self._ids) and self._ids[-1] == id_

    def id_of(self, slot: int) -> int:
        if self._slots is None:
            return self._ids[slot]
        if self._id_of is None:
            id_of = array("q", bytes(self._ids.itemsize * len(self._ids)))
            for id_, at in zip(self._ids, self._slots, strict=True):
                id_of[at] = id_
            self._id_of = id_of
        return self._id_of[slot]


class IdSlots:
    """Any int ids, each given the next slot (0, 1, ...) on first sight, found
    in O(1): a database's keys (customers, books) run mostly from 1 up with
    few gaps, so a table indexed by the id itself holds them in 4 bytes an
    id; the ids it would take too much room for (far off, or negative) go to
    a dict.

    A ``dict[int, int]`` costs about 100 bytes an id (an entry, two int
    objects): 10 MB for 100k customers, and as much for 100k books.
    """

    # The table covers ids below TABLE_PER_ID * (slots + 1) + TABLE_FLOOR at
    # most: at least a quarter of its entries used, past the floor.
    TABLE_PER_ID = 4
    TABLE_FLOOR = 1024

    def __init__(self) -> None:
        # Id -> slot (NONE: not seen), for ids 0 .. len - 1.
        self._table = array("i")
        self._others: dict[int, int] = {}
        # The least id >= 0 in the dict (-1: none), so that widening the
        # table looks through the dict only when it covers one of them.
        self._least_other = NONE
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, id_: int) -> int:
        """The slot of ``id_``, or NONE if it was never seen."""
        table = self._table
        if 0 <= id_ < len(table):
            return table[id_]
        return self._others.get(id_, NONE)

    def slot(self, id_: int) -> int:
        """The slot of ``id_``, made if new."""
        found = self.get(id_)
        return found if found != NONE else self.add(id_)

    def add(self, id_: int) -> int:
        """Give ``id_``, not seen yet, the next slot."""
        slot = self._count
        self._count += 1
        table = self._table
        if len(table) <= id_ < self.TABLE_PER_ID * self._count + self.TABLE_FLOOR:
            self._widen(id_ + 1)
        if 0 <= id_ < len(table):
            table[id_] = slot
        else:
            self._others[id_] = slot
            if id_ >= 0 and (self._least_other == NONE or id_ < self._least_other):
                self._least_other = id_
        return slot

    def _widen(self, size: int) -> None:
        """Cover ids below ``size`` at least; the ids of the dict it now
        covers move into the table."""
        table = self._table
        # An eighth more at once at least, so that ids arriving one above
        # the other widen it a few dozen times, not once each.
        size = max(size, len(table) + (len(table) >> 3))
        table.frombytes(_NONE_BYTE * (table.itemsize * (size - len(table))))
        if self._least_other == NONE or self._least_other >= size:
            return
        others, rest = self._others, {}
        for id_, slot in others.items():
            if 0 <= id_ < size:
                table[id_] = slot
            else:
                rest[id_] = slot
        # A new dict: one never shrinks as it empties.
        self._others = rest
        self._least_other = min((id_ for id_ in rest if id_ >= 0), default=NONE)
