"""One render at a time per model, with every waiting request joined into that render's batch.

A server with many sessions gets render requests from many threads at once. Run side by side,
their convolutions fight over the same cores (each PyTorch call wants all of them) and each pays
the per-call cost alone. Here the first caller renders and every caller that arrives meanwhile
waits; when that render ends, the next caller renders everything that is waiting in one batched
call, codes asked for twice (twenty new sessions showing the same starter designs) only once.
A lone user waits for nothing: there is no collection window.

A request may also carry a thread budget. On a busy server other sessions' Python work needs a
core while a render runs, and a render on every core then waits for its slowest thread: measured
on two cores under 20 sessions, renders on two threads made Generate 3x slower (p50 2.4 against
0.7 s) and cost twice the CPU per click. The caller knows whether it is alone; the batch runs on
the smallest budget any of its requests asked for.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

MAX_CODES = 64  # codes per batched call at most: bounds the latency a request can be made to wait


@dataclass(eq=False)  # identity: two requests for the same codes are still two requests
class _Request:
    ws: np.ndarray                      # (N, num_ws, w_dim) float32
    result: torch.Tensor | None = None  # (N, C, H, W) once rendered
    error: BaseException | None = None
    done: bool = False
    keys: list[bytes] = field(default_factory=list)
    threads: int | None = None          # torch threads this request may use; None: as set


class BatchingRenderer:
    """Renders W+ codes through ``G.synthesis``, one call at a time, batching concurrent requests.

    ``calls`` and ``codes_rendered`` count what reached the generator (for tests and benchmarks).
    """

    def __init__(self, G: Any, max_codes: int = MAX_CODES) -> None:
        self.G = G
        self.max_codes = max(1, int(max_codes))
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._rendering = False
        self.calls = 0
        self.codes_rendered = 0

    def synthesis(self, ws: np.ndarray | torch.Tensor, threads: int | None = None) -> torch.Tensor:
        """Images (N, C, H, W) of codes (N, num_ws, w_dim), the same as ``G.synthesis`` gives.

        ``threads``: at most this many torch threads for the render (None: the process's setting).
        """
        arr = np.ascontiguousarray(np.asarray(ws.detach().cpu() if isinstance(ws, torch.Tensor) else ws,
                                              dtype=np.float32))
        if arr.ndim == 2:
            arr = arr[None]
        expected = (self.G.num_ws, self.G.w_dim)
        if arr.ndim != 3 or arr.shape[1:] != expected:  # checked here: a bad request must not fail a batch
            raise ValueError(f"ws must have shape (N, {expected[0]}, {expected[1]}), got {tuple(arr.shape)}")
        request = _Request(arr, keys=[code.tobytes() for code in arr], threads=threads)
        with self._cond:
            self._pending.append(request)
            while not request.done and self._rendering:
                self._cond.wait()
            lead = not request.done
            if lead:
                self._rendering = True  # this thread renders what is waiting, its own request first
        if lead:
            self._render_pending(request)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _render_pending(self, own: _Request) -> None:
        """Render one batch (``own`` in it), then let the next waiting caller take over."""
        batch: list[_Request] = []
        try:
            with self._cond:
                batch = self._take_batch(own)
            self._render(batch)
        finally:
            with self._cond:
                for r in batch:
                    r.done = True
                if not own.done:  # never reached the batch (an error before it): say so, not hang
                    own.error, own.done = RuntimeError("the render was interrupted"), True
                    if own in self._pending:
                        self._pending.remove(own)
                self._rendering = False
                self._cond.notify_all()

    def _take_batch(self, own: _Request) -> list[_Request]:
        """Waiting requests up to ``max_codes`` codes (always at least one; ``own`` first)."""
        queue = sorted(self._pending, key=lambda r: r is not own)
        batch, codes = [], 0
        for r in queue:
            if batch and codes + len(r.ws) > self.max_codes:
                break
            batch.append(r)
            codes += len(r.ws)
        for r in batch:
            self._pending.remove(r)
        return batch

    def _render(self, batch: list[_Request]) -> None:
        unique: dict[bytes, int] = {}
        rows: list[np.ndarray] = []
        for r in batch:
            for key, code in zip(r.keys, r.ws):
                if key not in unique:
                    unique[key] = len(rows)
                    rows.append(code)
        budgets = [r.threads for r in batch if r.threads]
        try:
            with thread_budget(min(budgets) if budgets else None):
                images = self.G.synthesis(np.stack(rows))
            self.calls += 1
            self.codes_rendered += len(rows)
            for r in batch:
                r.result = images[[unique[k] for k in r.keys]]
        except Exception as exc:  # noqa: BLE001 - every request of the batch hears of it
            for r in batch:
                r.error = exc


@contextmanager
def thread_budget(threads: int | None) -> Iterator[None]:
    """Run the block on at most ``threads`` torch threads (None: unchanged), then restore the setting.

    Safe here because one render runs at a time per model; the setting is process-wide, so other
    torch work running at that moment gets the same budget, which is what a busy server wants.
    """
    before = torch.get_num_threads()
    if not threads or threads >= before:
        yield
        return
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


_RENDERERS: weakref.WeakKeyDictionary[Any, BatchingRenderer] = weakref.WeakKeyDictionary()
_RENDERERS_LOCK = threading.Lock()


def renderer_for(G: Any) -> BatchingRenderer:
    """The one batching renderer of this generator in this process."""
    with _RENDERERS_LOCK:
        renderer = _RENDERERS.get(G)
        if renderer is None:
            renderer = _RENDERERS[G] = BatchingRenderer(G)
        return renderer
