"""The server's long-lived objects leave the garbage collector's view once they are loaded."""
from __future__ import annotations

import gc
import sys
import types

from clothinggan.ui import heap


def test_freezing_happens_once_per_growth_of_the_imported_modules(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_modules_at_freeze", 0)
    try:
        assert heap.freeze_long_lived() and gc.get_freeze_count() > 1000
        assert not heap.modules_grew() and not heap.freeze_long_lived()
        monkeypatch.setitem(sys.modules, "clothinggan_test_fresh_module", types.ModuleType("fresh"))
        assert heap.modules_grew() and heap.freeze_long_lived()
    finally:
        gc.unfreeze()


def test_garbage_made_before_a_freeze_is_collected_not_frozen(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_modules_at_freeze", 0)

    class Node:
        pass

    collected = []
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    import weakref
    ref = weakref.ref(a, lambda _: collected.append(True))
    del a, b
    try:
        heap.freeze_long_lived()
        assert ref() is None and collected == [True]
    finally:
        gc.unfreeze()


def test_only_a_server_freezes_after_its_runs(monkeypatch) -> None:
    started: list[float] = []
    monkeypatch.setattr(heap, "_modules_at_freeze", 0)
    monkeypatch.setattr(heap.threading, "Timer", lambda delay, fn: started.append(delay) or _NoTimer())
    monkeypatch.setattr(heap, "_enabled", False)
    heap.freeze_soon()
    assert started == []  # a test process running the app's script: nothing frozen
    monkeypatch.setattr(heap, "_enabled", True)
    heap.freeze_soon()
    assert started == [1.0]


class _NoTimer:
    daemon = False
    name = ""

    def start(self) -> None:
        pass
