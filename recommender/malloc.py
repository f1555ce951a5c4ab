"""glibc's malloc, kept from holding the index's freed arrays."""

from __future__ import annotations

import sys

# mallopt()'s parameter, from glibc's malloc.h.
M_MMAP_THRESHOLD = -3
# glibc's own default: a block this large or larger gets pages of its own.
MMAP_THRESHOLD = 128 * 1024


def keep_large_blocks_mapped() -> bool:
    """From now on every block of 128 KiB or more is mapped on its own and
    unmapped as soon as it is freed; whether malloc took it (glibc only).

    That is glibc's default, but glibc raises the threshold to the size of
    each mapped block freed (up to 32 MiB). Loading the index frees arrays
    of several MB, so the arrays made after them went to the heap, where an
    array that grows is copied and a freed one leaves a hole that stays
    resident: 11 MB of the recommender's peak at 100k books and 1M
    purchases. Setting the threshold turns that adjustment off.
    """
    if sys.platform != "linux":
        return False
    import ctypes  # only here: the other services never load it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without it
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
