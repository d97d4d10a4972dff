"""Shared pytest fixtures: where the shared reference fixtures live, and a tiny random generator.

Several test modules use these, so their behaviour is kept stable (same seed, same shapes).
"""
from __future__ import annotations

import contextlib
import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch

import clothinggan as cg
from clothinggan.networks import GeneratorConfig, StyleGAN2

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared folder (``CLOTHINGGAN_SHARED`` overrides ``<repo>/../shared``)."""
    override = os.environ.get("CLOTHINGGAN_SHARED")
    return Path(override) if override else REPO_ROOT.parent / "shared"


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
    torch.manual_seed(0)
    cfg = GeneratorConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})
    return cg.Generator(StyleGAN2(cfg))
