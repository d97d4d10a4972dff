"""The app's image cache: one entry per design, only the missing ones rendered, in one batched call."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import clothinggan as cg
from clothinggan import testing
from clothinggan.generator import Generator
from clothinggan.designs import designs_from_seeds
from clothinggan.ui import resources


@pytest.fixture()
def G(monkeypatch) -> Generator:
    G = testing.tiny_generator(0)
    monkeypatch.setattr(resources, "IMAGES", resources.ImageCache())
    return G


def count_batches(G: Generator, monkeypatch) -> list[int]:
    calls: list[int] = []
    real = G.synthesis

    def synthesis(ws, *args, **kwargs):
        calls.append(len(ws))
        return real(ws, *args, **kwargs)

    monkeypatch.setattr(G, "synthesis", synthesis)
    return calls


def test_a_grid_renders_in_one_call_and_only_new_designs_render(G, monkeypatch) -> None:
    calls = count_batches(G, monkeypatch)
    first = designs_from_seeds(G, [0, 1, 2, 3], 0.7)
    images = resources.render_designs(G, first)
    assert calls == [4] and len(images) == 4
    expected = cg.to_pil(G.net.synthesis(torch.as_tensor(np.stack([d.ws for d in first]))))
    for got, want in zip(images, expected):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    more = designs_from_seeds(G, [2, 9, 0, 8, 3, 1], 0.7)
    again = resources.render_designs(G, more)
    assert calls == [4, 2]  # seeds 9 and 8, together (a seed maps to the same bits in any batch)
    assert again[0] is images[2] and again[2] is images[0]
    assert resources.render(G, first[1].ws)[0] is images[1] and calls == [4, 2]
    assert resources.render_designs(G, []) == []


def test_image_cache_is_bounded_by_bytes(G) -> None:
    cache = resources.ImageCache(max_bytes=3 * 16 * 16 * 3)
    for seed, image in enumerate(resources.render_designs(G, designs_from_seeds(G, range(5), 1.0))):
        cache.put((G.fingerprint, bytes([seed])), image)
    assert len(cache) == 3
    assert cache.get((G.fingerprint, bytes([0]))) is None and cache.get((G.fingerprint, bytes([4]))) is not None


def test_shown_images_are_made_once_per_picture_and_size(G, monkeypatch) -> None:
    import base64
    import io

    from PIL import Image

    def decoded(url: str) -> Image.Image:
        assert url.startswith("data:image/jpeg;base64,")
        return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))

    monkeypatch.setattr(resources, "SHOWN", resources.ByteBoundedLRU(2**20, len))
    image = resources.render_designs(G, designs_from_seeds(G, [5], 0.7))[0]
    fixed = resources.shown_url(image, 224, exact=True)
    assert decoded(fixed).size == (224, 224 * image.height // image.width)  # no resize by Streamlit
    filled = resources.shown_url(image, 224)
    factor = -(-224 // image.width)
    assert decoded(filled).size == (image.width * factor, image.height * factor)
    twin = image.copy()  # another object with the same pixels: the same URL, not a second encoding
    assert resources.shown_url(twin, 224, exact=True) is fixed and len(resources.SHOWN) == 2
    other = resources.render_designs(G, designs_from_seeds(G, [6], 0.7))[0]
    assert resources.shown_url(other, 224, exact=True) != fixed
    shown = np.asarray(decoded(fixed).convert("RGB").resize(image.size, Image.LANCZOS), dtype=float)
    assert np.abs(shown - np.asarray(image, dtype=float)).mean() < 8  # the same picture, enlarged


def test_the_shown_cache_is_bounded_by_bytes() -> None:
    cache = resources.ByteBoundedLRU(10, len)
    for i in range(5):
        cache.put(i, b"abcd")
    assert len(cache) == 2 and cache.get(4) == b"abcd" and cache.get(0) is None


def test_a_value_asked_for_by_several_threads_at_once_is_made_once() -> None:
    import threading
    import time

    cache = resources.ByteBoundedLRU(2**20, len)
    calls: list[list[int]] = []

    def make(indices: list[int]) -> list[bytes]:
        calls.append(indices)
        time.sleep(0.2)  # long enough for every other thread to arrive while this one works
        return [b"garment %d" % i for i in indices]

    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_make_many(["a", "b", "a"], make)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == [[0, 1]]  # one call, the duplicate key made once
    assert results == [[b"garment 0", b"garment 1", b"garment 0"]] * 4


def test_a_waiter_makes_the_value_itself_when_its_maker_fails() -> None:
    import threading
    import time

    cache = resources.ByteBoundedLRU(2**20, len)
    started = threading.Event()

    def failing() -> bytes:
        started.set()
        time.sleep(0.2)
        raise RuntimeError("out of memory")

    errors: list[Exception] = []

    def first() -> None:
        try:
            cache.get_or_make("k", failing)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    started.wait(5)
    assert cache.get_or_make("k", lambda: b"made here") == b"made here"
    t.join(5)
    assert len(errors) == 1 and cache.get("k") == b"made here"


def test_a_grid_another_session_is_rendering_is_waited_for_not_rendered_again(G, monkeypatch) -> None:
    import threading
    import time

    calls: list[int] = []
    real = G.synthesis

    def slow_synthesis(ws, *args, **kwargs):  # long enough for the second session to arrive meanwhile
        calls.append(len(ws))
        time.sleep(0.3)
        return real(ws, *args, **kwargs)

    monkeypatch.setattr(G, "synthesis", slow_synthesis)
    designs = designs_from_seeds(G, [0, 1, 2], 0.7)
    shown: list[list] = []
    first = threading.Thread(target=lambda: shown.append(resources.render_designs(G, designs)))
    first.start()
    time.sleep(0.1)
    second = resources.render_designs(G, designs + designs_from_seeds(G, [3], 0.7))
    first.join(10)
    assert sorted(calls) == [1, 3]  # the three shared garments once; only the new one by the second
    assert [a.tobytes() for a in second[:3]] == [b.tobytes() for b in shown[0]]
