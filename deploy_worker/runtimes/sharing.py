"""Keep a forked bot's new allocations off the pages it shares with the fork server.

A forked child shares every page of the server copy-on-write; the first write to a page copies it
into the child's private memory (its USS). Besides the writes a child cannot avoid (reference counts
of the objects its code uses), much of that copying came from where its NEW objects landed: pymalloc
hands out the free blocks of the server's partly used pools first, so a child's few thousand small
objects were spread over hundreds of shared pages, each 16-byte object copying a 4 KiB page.

:func:`fill_pymalloc_holes` runs in the server just before the freeze: it takes every free block of
every partly used pool (``sys._debugmallocstats`` counts them per size class) and never gives it back,
so a child's allocations start on fresh pools of its own, packed together. The blocks cost the server
(once, shared by no one) their size, typically a few MB; they are never written again.

Only the standard library here: the fork server imports nothing it does not need.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile

# ``sys._debugmallocstats`` table rows: class, size, pools, blocks in use, free blocks.
_ROW = re.compile(r"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", re.MULTILINE)


def free_pymalloc_blocks() -> dict[int, int]:
    """Free blocks of partly used pymalloc pools, by block size (empty when pymalloc is off, e.g.
    ``PYTHONMALLOC=malloc``)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    return {int(size): int(free) for size, free in _ROW.findall(text) if int(free)}


def fill_pymalloc_holes(passes: int = 3) -> int:
    """Allocate (and keep for good) every free block of the partly used pools; returns how many.

    A few passes: the calls themselves allocate and free a handful of small objects."""
    allocate = ctypes.pythonapi.PyObject_Malloc
    allocate.restype = ctypes.c_void_p
    allocate.argtypes = [ctypes.c_size_t]
    taken = 0
    for _ in range(passes):
        free = free_pymalloc_blocks()
        if not free:
            break
        for size, count in free.items():
            for _ in range(count):
                if allocate(size) is None:
                    raise MemoryError("PyObject_Malloc failed while filling pool holes")
            taken += count
    return taken
