"""Blocks: many small int lists in one array, whatever the order of changes."""

from __future__ import annotations

import random
from array import array

import pytest

from recommender.blocks import NONE, Blocks

KEYS = 50
SLACK = 16


def read(blocks: Blocks, key: int) -> list[int] | None:
    start = blocks.starts[key]
    if start == NONE:
        return None
    return list(blocks.flat[start : start + blocks.sizes[key]])


def test_each_key_reads_back_its_list_and_the_garbage_stays_bounded():
    rng = random.Random(3)
    blocks = Blocks(slack=SLACK)
    model: dict[int, list[int] | None] = {blocks.add_key(): None for _ in range(KEYS)}
    for step in range(8000):
        key = rng.randrange(KEYS)
        roll = rng.random()
        if roll < 0.1:
            blocks.drop(key)
            model[key] = None
        elif roll < 0.12:
            keys = [rng.randrange(KEYS) for _ in range(rng.randrange(0, 40))]
            values = [rng.randrange(10**6) for _ in keys]
            blocks.extend(array("i", keys), array("i", values))
            for k, value in zip(keys, values, strict=True):
                model[k] = [*(model[k] or []), value]
        elif roll < 0.15:
            # A late order goes to its place in a book's list.
            items = model[key] or []
            index, value = rng.randrange(len(items) + 1), rng.randrange(10**6)
            blocks.insert(key, index, value)
            model[key] = [*items[:index], value, *items[index:]]
        elif roll < 0.3:
            block = [rng.randrange(-5, 10**6) for _ in range(rng.randrange(0, 12))]
            start = blocks.put(key, array("i", block))
            assert list(blocks.flat[start : start + len(block)]) == block
            model[key] = block
        else:
            value = rng.randrange(10**6)
            blocks.append(key, value)
            model[key] = [*(model[key] or []), value]
        assert read(blocks, key) == model[key]
        if roll >= 0.12:
            # A change copies the live lists together first when garbage
            # outweighs them; a list's room is at most about twice its size.
            held = sum(len(items) for items in model.values() if items is not None)
            assert len(blocks.flat) <= 4 * held + 2 * KEYS + 2 * SLACK
        if step % 97 == 0:
            assert {k: read(blocks, k) for k in model} == model
            assert all(list(blocks.items(k)) == (v or []) for k, v in model.items())
            assert all(list(blocks.last(k, 3)) == (v or [])[-3:] for k, v in model.items())


def test_appends_to_the_last_list_grow_it_in_place():
    blocks = Blocks()
    first, second = blocks.add_key(), blocks.add_key()
    blocks.append(first, 1)
    for value in range(2, 6):
        blocks.append(second, value)
    assert list(blocks.flat) == [1, 2, 3, 4, 5]
    blocks.append(first, 6)  # full and not last: moved to the end, with room
    assert list(blocks.items(first)) == [1, 6]
    assert list(blocks.items(second)) == [2, 3, 4, 5]


def test_extend_needs_a_value_for_each_key():
    blocks = Blocks()
    blocks.grow(3)
    with pytest.raises(ValueError, match="2 keys for 1 values"):
        blocks.extend(array("i", [0, 2]), array("i", [5]))
    assert [list(blocks.items(k)) for k in range(3)] == [[], [], []]


def test_a_new_key_has_no_list():
    blocks = Blocks()
    key = blocks.add_key()
    assert (len(blocks), blocks.starts[key], list(blocks.items(key))) == (1, NONE, [])
    blocks.drop(key)  # dropping nothing is fine
    assert blocks.starts[key] == NONE
