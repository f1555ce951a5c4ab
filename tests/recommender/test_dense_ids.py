"""DenseIds: every id keeps the slot it was given first, in any arrival order."""

from __future__ import annotations

import random
import tracemalloc

from recommender.blocks import NONE
from recommender.dense_ids import DenseIds, IdSlots


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
    ids.slot(2**41)
    assert ids.id_of(5) == 2**41


def test_ids_in_increasing_order_tell_their_slots_and_ids():
    ids = DenseIds()
    assert [ids.slot(id_) for id_ in (3, 8, 8, 2**40, 3)] == [0, 1, 1, 2, 0]
    assert [ids.id_of(slot) for slot in range(3)] == [3, 8, 2**40]
    assert ids.slot(5) == 3  # the first out of order keeps every slot given
    assert [ids.slot(id_) for id_ in (3, 5, 8, 2**40)] == [0, 3, 1, 2]
    assert [ids.id_of(slot) for slot in range(4)] == [3, 8, 2**40, 5]


def test_id_slots_are_given_in_order_of_first_sight_and_found_again():
    rng = random.Random(12)
    ids = IdSlots()
    given: dict[int, int] = {}
    for _ in range(20_000):
        # Database keys in any order, with gaps; some far off, negative, or seen before.
        id_ = rng.choice(
            [
                rng.randrange(1, 30_000),
                rng.randrange(1, 30_000),
                rng.randrange(-(2**63), 2**63),
                rng.randrange(-3, 3),
                *(list(given)[-1:] or [0]),
            ]
        )
        expected = given.setdefault(id_, len(given))
        if rng.random() < 0.5:
            assert ids.get(id_) == (expected if expected < len(ids) else NONE)
        assert ids.slot(id_) == expected
    assert len(ids) == len(given)
    assert all(ids.get(id_) == slot for id_, slot in given.items())
    assert all(ids.get(id_) == NONE for id_ in (-(2**62), 10**6, 2**63 - 1) if id_ not in given)


def test_id_slots_take_far_off_ids_without_room_for_those_below():
    ids = IdSlots()
    tracemalloc.start()
    try:
        assert (ids.add(2**40), ids.add(10**9), ids.add(7), ids.add(-1)) == (0, 1, 2, 3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert [ids.get(id_) for id_ in (2**40, 10**9, 7, -1, 8)] == [0, 1, 2, 3, NONE]
