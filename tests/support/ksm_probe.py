"""Preloaded by the fork server in tests/deploy_worker/test_memory_merge.py: ``DATA`` is built once in
the server; a forked 'bot' running :func:`touch_and_hold` reads every item (CPython writes each one's
reference count, so the child copies those pages) and then idles, its copies holding the same bytes as
the server's and as every other child's: the pages kernel same-page merging exists to merge."""

from __future__ import annotations

import json
import os
import time

DATA = [(i, f"item-{i}") for i in range(100_000)]


def touch_and_hold() -> int:
    touched = 0
    for item in DATA:  # a new reference to each tuple, then dropped: its page copied, bytes alike
        touched += item[0] >= 0
    print(json.dumps({"pid": os.getpid(), "touched": touched}), flush=True)
    time.sleep(300)  # the test kills it long before
    return 0
