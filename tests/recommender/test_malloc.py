"""The recommender keeps glibc's malloc from holding the arrays it frees."""

from __future__ import annotations

import subprocess
import sys

# Allocates a large array and frees it, as loading the index does, then
# allocates a smaller one: does it get pages of its own (counted in
# mallinfo2's hblkhd), which go back to the system when it is freed?
PROBE = """
import ctypes, sys
from recommender.malloc import keep_large_blocks_mapped

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
took = keep_large_blocks_mapped() if sys.argv[1] == "kept" else None
freed = bytearray(16 << 20)
del freed
before = mallinfo2().hblkhd
later = bytearray(1 << 20)
print(took, mallinfo2().hblkhd - before >= 1 << 20)
"""


def probe(mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_an_array_made_after_a_larger_one_was_freed_still_gets_pages_of_its_own():
    assert probe("kept") == ["True", "True"]
    # What it changes: by default, glibc puts that array in its heap.
    assert probe("default") == ["None", "False"]
