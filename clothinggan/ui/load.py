"""How busy this server process is: the threads running a script (or a fragment) right now.

Renders ask for fewer threads while other sessions' runs are going on (see ``batching``): a lone
designer gets every core, and twenty designers do not make each other's renders wait on a
starved thread. Runs are counted by thread, so a fragment inside a full run counts once.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth: dict[int, int] = {}  # thread id -> nesting depth of its runs in progress


@contextmanager
def script_run() -> Iterator[None]:
    """Count the enclosed script or fragment run as in progress on this thread."""
    me = threading.get_ident()
    with _lock:
        _depth[me] = _depth.get(me, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _depth[me] -= 1
            if not _depth[me]:
                del _depth[me]


def active_runs() -> int:
    """Threads with a run in progress, this one included."""
    return len(_depth)


def render_threads() -> int | None:
    """The torch threads a render may use now: one while other runs are in progress, else all (None)."""
    return 1 if len(_depth) > 1 else None
