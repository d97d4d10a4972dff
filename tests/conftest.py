"""Shared pytest fixtures: where the shared reference fixtures live, and a tiny random generator.

Several test modules use these, so their behaviour is kept stable (same seed, same shapes).
"""
from __future__ import annotations

import contextlib
import http.server
import os
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest
from pg_fixture import postgres_server, postgres_url  # noqa: F401 - fixtures for every module

import clothinggan as cg
from clothinggan import testing

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "streamlit_app.py")
APP_TIMEOUT = 60


def shared_dir() -> Path:
    """The shared folder (``CLOTHINGGAN_SHARED`` overrides ``<repo>/../shared``)."""
    override = os.environ.get("CLOTHINGGAN_SHARED")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def run_in_threads(work: Callable[[int], None], n: int) -> list[BaseException]:
    """Run ``work(0) … work(n - 1)`` on n threads at once and return what they raised: an exception
    in a thread is otherwise only printed, and the test would pass."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@contextlib.contextmanager
def local_http_server(handler: type[http.server.BaseHTTPRequestHandler],
                      server_class: type[http.server.ThreadingHTTPServer] = http.server.ThreadingHTTPServer,
                      ) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 at a free port from a daemon thread; yields the base URL."""
    httpd = server_class(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``shared/fixtures``; tests that need it are skipped when it is absent."""
    path = shared_dir() / "fixtures"
    if not path.is_dir():
        pytest.skip(f"shared fixtures not found at {path} (set CLOTHINGGAN_SHARED)")
    return path


@pytest.fixture()
def tiny_generator() -> cg.Generator:
    """A random-weight 16-px Generator (seed 0), cheap enough for any test."""
    return testing.tiny_generator(0, name="model", device=None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny generator saved as a model file (the app's tests start on it)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    cg.save_generator(testing.tiny_generator(0, name="tiny", device=None), path)
    return path


@pytest.fixture()
def app_env(tiny_model, tmp_path, monkeypatch) -> str:
    """The environment of an app on the tiny model with a private cache; returns its library's URL."""
    url = f"sqlite:///{tmp_path / 'library.sqlite'}"
    monkeypatch.setenv("CLOTHINGGAN_DEFAULT_MODEL", str(tiny_model))
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CLOTHINGGAN_LIBRARY_URL", url)
    monkeypatch.setenv("CLOTHINGGAN_MODEL_DIRS", str(tmp_path))  # "File path" may load the test's own files
    return url


@pytest.fixture()
def app(app_env, monkeypatch):
    """The app (AppTest) after its first run on the tiny model."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CLOTHINGGAN_PCA_SAMPLES", "2000")
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception
    return at
