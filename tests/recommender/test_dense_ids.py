"""DenseIds: every id keeps the slot it was given first, in any arrival order."""

from __future__ import annotations

import random

from recommender.dense_ids import DenseIds


def test_slots_are_given_in_order_of_first_sight_and_kept():
    rng = random.Random(11)
    ids = DenseIds()
    given: dict[int, int] = {}
    for _ in range(3000):
        # Mostly increasing, as orders and new customers arrive; some old, some far off.
        id_ = rng.choice([len(given) * 3, rng.randrange(-(2**63), 2**63), rng.randrange(500)])
        slot = ids.slot(id_)
        assert slot == given.setdefault(id_, len(given))
    assert len(ids) == len(given)
    assert all(ids.get(id_) == slot for id_, slot in given.items())


def test_an_id_never_seen_has_no_slot():
    ids = DenseIds()
    assert ids.get(7) == -1
    ids.slot(5)
    ids.slot(9)
    assert (ids.get(7), ids.get(5), ids.get(9), ids.get(10)) == (-1, 0, 1, -1)
