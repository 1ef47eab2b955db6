"""An entry point a forked 'bot' runs in tests/deploy_worker/test_warm_up.py: it prints the state of
its garbage collector (on, and the objects inherited frozen from the fork server) as one JSON line to
its log (stdout)."""

from __future__ import annotations

import gc
import json


def collector() -> int:
    print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}), flush=True)
    return 0
