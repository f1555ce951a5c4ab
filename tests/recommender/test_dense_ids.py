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
    assert all(ids.slot(id_) == slot for id_, slot in given.items())
    assert len(ids) == len(given)


def test_an_id_between_known_ones_gets_the_next_slot_and_moves_none():
    ids = DenseIds()
    assert (ids.slot(5), ids.slot(9), ids.slot(7), ids.slot(10)) == (0, 1, 2, 3)
    assert (ids.slot(7), ids.slot(5), ids.slot(9), ids.slot(10)) == (2, 0, 1, 3)


def test_each_slot_tells_its_id():
    ids = DenseIds()
    for id_ in (30, 10, 2**40, 20):
        ids.slot(id_)
    assert [ids.id_of(slot) for slot in range(4)] == [30, 10, 2**40, 20]
    ids.slot(5)  # after the first id_of(), new slots are kept too
    assert ids.id_of(4) == 5
    assert ids.is_greatest(2**40)
    assert not ids.is_greatest(5)
