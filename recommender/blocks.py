"""Many small integer lists kept in one flat array.

At 100k books and 1M purchases, a separate ``array`` per book, per order or
per customer costs about 64 bytes of object before its first item, plus a
pointer to find it: more than the items themselves. Here a list costs its
items, a start, a size and its room.
"""

from __future__ import annotations

from array import array

NONE = -1
_ITEM_BYTES = array("i").itemsize


def _zeros(count: int) -> array[int]:
    return array("i", bytes(_ITEM_BYTES * count))


class Blocks:
    """One list of ints (a block) per key, a dense slot 0..n-1; or none.

    A block lives at ``flat[starts[key] : starts[key] + sizes[key]]``; a key
    without one has ``starts[key] == -1``. Read it right after ``put`` or
    ``append``, not across them: either may move every block.

    Appending to the block at the end of ``flat`` grows it there; any other
    full block moves to the end with twice the room. A moved, replaced or
    dropped block leaves its items behind; a change that finds them
    outweighing the live blocks first copies the live blocks together.
    """

    def __init__(self, *, slack: int = 4096) -> None:
        # Garbage below ``slack`` items is never worth a copy.
        self._slack = slack
        self.flat = array("i")
        self.starts = array("i")  # 2**31 items would be 8 GB: far past any index here
        self.sizes = array("i")
        self._room = array("i")
        self._live = 0  # the room of every live block

    def __len__(self) -> int:
        return len(self.starts)

    def add_key(self) -> int:
        """A new key (the next slot), with no block."""
        self.grow(len(self.starts) + 1)
        return len(self.starts) - 1

    def grow(self, keys: int) -> None:
        """Keys up to ``keys`` - 1, the new ones with no block."""
        more = keys - len(self.starts)
        if more > 0:
            self.starts.extend(array("i", [NONE]) * more)
            self.sizes += _zeros(more)
            self._room += _zeros(more)

    def items(self, key: int) -> array[int]:
        """A copy of ``key``'s block (empty if it has none)."""
        start = self.starts[key]
        if start == NONE:
            return array("i")
        return self.flat[start : start + self.sizes[key]]

    def last(self, key: int, count: int) -> array[int]:
        """A copy of the last ``count`` items of ``key``'s block (all of a
        shorter one): a best seller's tens of thousands of orders are not
        copied to read its most recent ones."""
        start = self.starts[key]
        if start == NONE:
            return array("i")
        end = start + self.sizes[key]
        return self.flat[max(start, end - count) : end]

    def put(self, key: int, block: array[int]) -> int:
        """Give ``key`` this block, replacing its own; returns its start."""
        return self._replace(key, block, room=len(block))

    def append(self, key: int, value: int) -> None:
        start, size, room = self.starts[key], self.sizes[key], self._room[key]
        flat = self.flat
        if size < room:
            flat[start + size] = value
        elif start != NONE and start + room == len(flat):
            flat.append(value)
            self._room[key] = room + 1
            self._live += 1
        else:
            block = self.items(key)
            block.append(value)
            self._replace(key, block, room=max(1, 2 * room))
            return
        self.sizes[key] = size + 1

    def insert(self, key: int, index: int, value: int) -> None:
        """``value`` into ``key``'s list before its ``index``-th item (rare:
        append() is the way lists grow)."""
        block = self.items(key)
        block.insert(index, value)
        self._replace(key, block, room=max(len(block), self._room[key]))

    def extend(self, keys: array[int], values: array[int]) -> None:
        """Append ``values[i]`` to the list of ``keys[i]``, in order, for every i:
        append() in a loop, in a few passes over the arrays instead of a call
        per item (a history of a million purchases). Every list is laid out
        afresh, compacted."""
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for {len(values)} values")
        adding = _zeros(len(self.starts))
        for key in keys:
            adding[key] += 1
        fill = self._lay_out(adding)
        flat = self.flat
        for key, value in zip(keys, values, strict=True):
            flat[fill[key]] = value
            fill[key] += 1

    def clear(self) -> None:
        """Drop every block; the keys stay."""
        self.flat = array("i")
        self.starts = array("i", [NONE]) * len(self.starts)
        self.sizes = _zeros(len(self.sizes))
        self._room = _zeros(len(self._room))
        self._live = 0

    def drop(self, key: int) -> None:
        if self.starts[key] != NONE:
            self._live -= self._room[key]
            self.starts[key] = NONE
            self.sizes[key] = 0
            self._room[key] = 0

    def _replace(self, key: int, block: array[int], *, room: int) -> int:
        self.drop(key)
        if len(self.flat) - self._live > max(self._live, self._slack):
            # The garbage outweighs the live blocks: copy those together first.
            self._lay_out(_zeros(len(self.starts)))
        start = len(self.flat)
        self.flat += block
        if room > len(block):
            self.flat += _zeros(room - len(block))
        self.starts[key], self.sizes[key], self._room[key] = start, len(block), room
        self._live += room
        return start

    def _lay_out(self, adding: array[int]) -> array[int]:
        """Copy every live block into a new ``flat``, together, each followed by
        room for ``adding[key]`` more items (taken into its size); returns
        ``adding`` turned into where each key's first added item goes."""
        old, flat = self.flat, array("i")
        starts, sizes, room = self.starts, self.sizes, self._room
        for key, start in enumerate(starts):
            size, more = sizes[key], adding[key]
            if start == NONE and not more:
                continue
            starts[key] = len(flat)
            if size:
                flat += old[start : start + size]
            adding[key] = len(flat)
            if more:
                flat.frombytes(bytes(_ITEM_BYTES * more))  # no array made per key
            sizes[key] = room[key] = size + more
        self.flat = flat
        self._live = len(flat)
        return adding
