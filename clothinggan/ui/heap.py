"""Cheap full garbage collections on a long-running server: long-lived objects leave the GC's view.

Streamlit runs a full ``gc.collect(2)`` after every script run (``runner.postScriptGC``, there to
keep memory from building up), and a full collection walks every tracked object: with torch,
Streamlit and plotly imported that is about 250,000 objects and 0.13 s of one core, two
thirds of the server's CPU per click under load. Nearly all of them are modules, classes and
functions that live as long as the process. ``gc.freeze()`` moves the objects alive at a moment
into a generation the collector never walks again, so the collections after it see only what the
sessions made since. Freezing right after a collection leaves no garbage frozen; it is redone
whenever the process has imported more modules (a page's first visit), a bounded number of times.
It is for a long-running server: the server-start warm-up turns it on, so a test process that
runs the app's script (AppTest) never freezes its own objects.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading

_LOG = logging.getLogger(__name__)
_lock = threading.Lock()
_modules_at_freeze = 0
_enabled = False


def enable() -> None:
    """Freeze long-lived objects in this process from now on (called once the server starts)."""
    global _enabled
    _enabled = True


def modules_grew() -> bool:
    """Whether modules were imported since the last freeze (the one test worth doing every run)."""
    return len(sys.modules) > _modules_at_freeze


def freeze_long_lived() -> bool:
    """Collect, then freeze what is alive, if modules were imported since the last time; True if it did."""
    global _modules_at_freeze
    with _lock:
        if not modules_grew():
            return False
        gc.collect()
        gc.freeze()
        _modules_at_freeze = len(sys.modules)
    _LOG.debug("froze %d long-lived objects", gc.get_freeze_count())
    return True


def freeze_soon(delay_s: float = 1.0) -> None:
    """Freeze from a daemon thread after ``delay_s``, when modules grew: off the script run that
    imported them, whose own objects are garbage by then, and not in the way of its answer."""
    if _enabled and modules_grew():
        timer = threading.Timer(delay_s, freeze_long_lived)
        timer.daemon = True
        timer.name = "clothinggan-gc-freeze"
        timer.start()
