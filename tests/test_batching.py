"""Concurrent render requests: one render at a time, waiting requests joined, every caller served right."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from clothinggan import testing
from clothinggan.batching import BatchingRenderer, renderer_for


class SlowCounting:
    """A generator stand-in that records each synthesis call and overlapping calls."""

    def __init__(self, delay: float = 0.05) -> None:
        self.G = testing.tiny_generator(0, device="cpu")
        self.num_ws, self.w_dim = self.G.num_ws, self.G.w_dim
        self.delay, self.calls, self.active, self.max_active = delay, [], 0, 0
        self.lock = threading.Lock()

    def synthesis(self, ws: np.ndarray) -> torch.Tensor:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(len(ws))
        time.sleep(self.delay)
        try:
            return self.G.synthesis(ws)
        finally:
            with self.lock:
                self.active -= 1


def join_all(threads: list[threading.Thread], seconds: float = 20) -> None:
    """Wait for all (daemon) threads, ``seconds`` in all: a hang fails the test instead of the suite."""
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))


def codes(G, seeds) -> np.ndarray:
    return G.seeds_to_ws(list(seeds), psi=0.7).numpy()


def test_a_lone_request_gets_what_synthesis_gives() -> None:
    G = testing.tiny_generator(0, device="cpu")
    ws = codes(G, range(3))
    got = BatchingRenderer(G).synthesis(ws)
    assert torch.allclose(got, G.synthesis(ws), atol=1e-5)
    assert BatchingRenderer(G).synthesis(ws[0]).shape == (1, 3, G.resolution, G.resolution)


def test_concurrent_requests_share_renders_and_each_gets_its_own_images() -> None:
    fake = SlowCounting()
    renderer = BatchingRenderer(fake)
    requests = [codes(fake.G, range(i * 10, i * 10 + 1 + i % 3)) for i in range(12)]  # 1-3 codes each
    results: dict[int, torch.Tensor] = {}

    def ask(i: int) -> None:
        results[i] = renderer.synthesis(requests[i])

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(12)]
    for t in threads:
        t.start()
    join_all(threads)
    assert len(results) == 12
    assert fake.max_active == 1                 # never two renders at once
    assert len(fake.calls) < 12                 # requests that waited were joined
    assert sum(fake.calls) == sum(len(r) for r in requests)  # and nothing rendered twice
    for i, ws in enumerate(requests):
        assert torch.allclose(results[i], fake.G.synthesis(ws), atol=1e-5)


def test_the_same_code_asked_twice_at_once_is_rendered_once() -> None:
    fake = SlowCounting(delay=0.2)
    renderer = BatchingRenderer(fake)
    first = threading.Thread(target=renderer.synthesis, args=(codes(fake.G, [9]),), daemon=True)
    first.start()
    time.sleep(0.05)  # the first render is under way; the next three wait for it
    same = codes(fake.G, [1, 2])
    out: list[torch.Tensor] = []
    waiters = [threading.Thread(target=lambda: out.append(renderer.synthesis(same)), daemon=True) for _ in range(3)]
    for t in waiters:
        t.start()
    join_all([first, *waiters])
    assert fake.calls == [1, 2] and len(out) == 3
    assert all(torch.equal(o, out[0]) for o in out)


def test_a_bad_request_fails_alone_and_a_failing_render_reaches_its_callers() -> None:
    G = testing.tiny_generator(0, device="cpu")
    renderer = BatchingRenderer(G)
    with pytest.raises(ValueError, match="ws must have shape"):
        renderer.synthesis(np.zeros((2, G.num_ws + 1, G.w_dim), np.float32))

    class Broken:
        num_ws, w_dim = G.num_ws, G.w_dim

        def synthesis(self, ws):
            raise RuntimeError("out of memory")

    broken = BatchingRenderer(Broken())
    with pytest.raises(RuntimeError, match="out of memory"):
        broken.synthesis(codes(G, [0]))
    assert torch.allclose(renderer.synthesis(codes(G, [0])), G.synthesis(codes(G, [0])), atol=1e-5)  # still serves


def test_one_renderer_per_generator() -> None:
    a, b = testing.tiny_generator(0, device="cpu"), testing.tiny_generator(1, device="cpu")
    assert renderer_for(a) is renderer_for(a) and renderer_for(a) is not renderer_for(b)


def test_many_threads_with_requests_of_every_size_all_get_their_images() -> None:
    G = testing.tiny_generator(0, device="cpu")
    renderer = BatchingRenderer(G, max_codes=8)
    wrong: list[str] = []

    def worker(i: int) -> None:
        rng = np.random.RandomState(i)
        for _ in range(15):
            ws = codes(G, rng.randint(0, 40, size=rng.randint(1, 7)))
            try:
                if not torch.allclose(renderer.synthesis(ws), G.synthesis(ws), atol=1e-5):
                    wrong.append(f"thread {i}: wrong images")
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                wrong.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    join_all(threads)
    assert not any(t.is_alive() for t in threads), "a request never came back"
    assert not wrong
    assert renderer.calls < 8 * 15  # some requests were joined


class ThreadRecording(SlowCounting):
    """Records the torch thread setting each synthesis call ran under."""

    def __init__(self) -> None:
        super().__init__(delay=0.0)
        self.threads_seen: list[int] = []

    def synthesis(self, ws: np.ndarray) -> torch.Tensor:
        self.threads_seen.append(torch.get_num_threads())
        return super().synthesis(ws)


def test_a_render_runs_on_its_thread_budget_and_restores_the_setting() -> None:
    fake = ThreadRecording()
    renderer = BatchingRenderer(fake)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        renderer.synthesis(codes(fake.G, [1]), threads=1)
        assert torch.get_num_threads() == 2
        renderer.synthesis(codes(fake.G, [2]))           # no budget: the process's setting
        renderer.synthesis(codes(fake.G, [3]), threads=8)  # a budget above the setting changes nothing
        assert fake.threads_seen == [1, 2, 2]
    finally:
        torch.set_num_threads(before)


def test_busy_server_renders_take_one_thread_counted_per_thread() -> None:
    from clothinggan.ui import load

    assert load.render_threads() is None
    with load.script_run():
        with load.script_run():  # a fragment inside a full run: the same thread, counted once
            assert load.active_runs() == 1 and load.render_threads() is None
        started, release = threading.Event(), threading.Event()

        def other_session() -> None:
            with load.script_run():
                started.set()
                release.wait(10)

        t = threading.Thread(target=other_session, daemon=True)
        t.start()
        started.wait(10)
        assert load.active_runs() == 2 and load.render_threads() == 1
        release.set()
        join_all([t])
    assert load.active_runs() == 0 and load.render_threads() is None
