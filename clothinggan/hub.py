"""Models on the Hugging Face Hub: ``hf://owner/repo[@revision]/path/to/file.pkl``.

The file comes through ``huggingface_hub.hf_hub_download`` (its cache, resumable downloads,
revision pinning, ``HF_TOKEN`` for private or gated repos) and is then read by the same safe
loaders as a local file: nothing here looks inside it. Every failure (bad address, unknown repo,
revision or file, no network, offline with nothing cached, size cap) is a ``DownloadError`` or
``CheckpointError`` with one clear sentence.

``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_HOME`` are read when a model is
loaded, not when huggingface_hub is imported, so a process (or a test) may change them later.
"""
from __future__ import annotations

import inspect
import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from clothinggan.errors import CheckpointError, DownloadError

SCHEME = "hf://"
MODEL_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
DEFAULT_ENDPOINT = "https://huggingface.co"
Progress = Callable[[int, Optional[int]], None]  # same shape as zoo.Progress: (bytes done, total or None)
USAGE = "expected hf://owner/repo/path/file.pkl, optionally pinned as hf://owner/repo@revision/path/file.pkl"


@dataclass(frozen=True)
class HubFile:
    """One file in one repo at one revision (None: the repo's default branch)."""

    repo_id: str
    filename: str
    revision: str | None = None
    repo_type: str = "model"

    def __str__(self) -> str:
        prefix = "" if self.repo_type == "model" else self.repo_type + "s/"
        rev = "" if self.revision is None else "@" + urllib.parse.quote(self.revision, safe="")
        return f"{SCHEME}{prefix}{self.repo_id}{rev}/{self.filename}"


def is_hub_spec(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(SCHEME)


def parse(spec: str) -> HubFile:
    """``hf://[datasets/|spaces/]owner/repo[@revision]/path/file`` → HubFile (CheckpointError if malformed).

    A revision with slashes (``refs/pr/3``) is written URL-encoded: ``@refs%2Fpr%2F3``.
    """
    if not is_hub_spec(spec):
        raise CheckpointError(spec, f"is not a Hugging Face address ({USAGE})")
    parts = spec[len(SCHEME):].split("/")
    repo_type = REPO_TYPES.get(parts[0], "model") if len(parts) > 3 else "model"
    if parts[0] in REPO_TYPES and len(parts) > 3:
        parts = parts[1:]
    if len(parts) < 3 or not all(parts):
        raise CheckpointError(spec, f"does not name a repo and a file ({USAGE})")
    name, _, revision = parts[1].partition("@")
    filename = "/".join(parts[2:])
    if not name or (revision == "" and "@" in parts[1]) or any(p in (".", "..") for p in parts[2:]):
        raise CheckpointError(spec, f"is not a valid Hugging Face address ({USAGE})")
    if not filename.lower().endswith(MODEL_SUFFIXES):
        raise CheckpointError(spec, f"does not name a generator file (one of {', '.join(MODEL_SUFFIXES)})")
    return HubFile(f"{parts[0]}/{name}", filename, urllib.parse.unquote(revision) or None, repo_type)


# -- settings read at call time ----------------------------------------------------------------------
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set now."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def unreachable(url: str, timeout: float = 3.0) -> bool:
    """True when ``url``'s host cannot even be connected to (no DNS, no route, refused).

    huggingface_hub retries such a failure five times with back-off, about half a minute, before it
    gives up or falls back to its cache; a model picker that hangs that long offline looks broken.
    Behind a proxy only the proxy can tell, so there this says reachable and lets the hub try.
    """
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return False
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return False
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return False
    except (OSError, ValueError):
        return True


# -- progress ----------------------------------------------------------------------------------------
def _bar_class(progress: Progress | None, max_bytes: int | None, ref: HubFile) -> type:
    """A tqdm class for hf_hub_download that enforces ``max_bytes`` and reports to ``progress``.

    Without a callback it is huggingface_hub's own bar (shown on a terminal, e.g. by the CLI; the
    usual HF_HUB_DISABLE_PROGRESS_BARS switch applies); with one, the bar is silent and the callback
    gets (bytes done, total).
    """
    from huggingface_hub.utils import tqdm as hf_tqdm

    label = str(ref)

    class Bar(hf_tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if progress is not None:
                kwargs["disable"] = True
            kwargs["desc"] = ref.filename.rsplit("/", 1)[-1]  # not huggingface_hub's truncated URL
            total = kwargs.get("total")
            if max_bytes is not None and total is not None and total > max_bytes:
                raise DownloadError(f"{label} is {total} bytes, more than the {max_bytes}-byte limit.")
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            if max_bytes is not None and self.done > max_bytes:
                raise DownloadError(f"{label} grew past the {max_bytes}-byte limit while downloading.")
            if progress is not None:
                progress(self.done, self.total)
            return super().update(n)

    return Bar


# -- download ----------------------------------------------------------------------------------------
def download(spec: str | HubFile, progress: Progress | None = None, max_bytes: int | None = None) -> Path:
    """Bring the file named by ``spec`` into the huggingface_hub cache (once) and return its local path.

    Raises DownloadError with one sentence when the repo, revision or file does not exist (or is
    private and no HF_TOKEN is set), the hub cannot be reached and nothing is cached, the machine
    is offline (HF_HUB_OFFLINE) and nothing is cached, or the file is over ``max_bytes``.
    """
    ref = parse(spec) if isinstance(spec, str) else spec
    try:
        import huggingface_hub
    except ImportError:
        raise DownloadError(f"Loading {ref} needs the huggingface_hub package (pip install huggingface-hub).") from None
    kwargs: dict[str, Any] = dict(repo_type=ref.repo_type, revision=ref.revision, cache_dir=str(hub_cache_dir()),
                                  endpoint=endpoint(), local_files_only=offline() or unreachable(endpoint()),
                                  library_name="clothinggan")
    if "tqdm_class" in inspect.signature(huggingface_hub.hf_hub_download).parameters:
        kwargs["tqdm_class"] = _bar_class(progress, max_bytes, ref)
    try:
        path = huggingface_hub.hf_hub_download(ref.repo_id, ref.filename, **kwargs)
    except DownloadError:
        raise
    except Exception as exc:  # huggingface_hub's errors differ by version and HTTP backend: map them all
        raise DownloadError(_explain(exc, ref)) from None
    return Path(path)


def _explain(exc: BaseException, ref: HubFile) -> str:
    """One sentence for a failed hf_hub_download."""
    from huggingface_hub import utils as hfu

    at = f" at revision {ref.revision!r}" if ref.revision else ""
    where = f"{ref.repo_type} repo {ref.repo_id!r}"
    if isinstance(exc, hfu.GatedRepoError):
        return (f"The {where} is gated: accept its terms on the hub, then set HF_TOKEN to a token of that account "
                f"to load {ref}.")
    if isinstance(exc, hfu.RepositoryNotFoundError):
        return (f"The hub has no {where} (or it is private: set HF_TOKEN to a token that can read it), "
                f"so {ref} cannot be loaded.")
    if isinstance(exc, hfu.RevisionNotFoundError):
        return f"The {where} has no revision {ref.revision!r} (a branch, tag or commit), so {ref} cannot be loaded."
    if isinstance(exc, hfu.LocalEntryNotFoundError):
        if offline():
            return (f"{ref} is not in the local cache ({hub_cache_dir()}) and HF_HUB_OFFLINE is set, so it cannot "
                    "be downloaded; unset HF_HUB_OFFLINE once online to fetch it.")
        status = _http_status(exc)
        if status is not None:
            return f"The hub at {endpoint()} answered HTTP {status} for {ref}, and it is not in the local cache."
        return (f"The hub at {endpoint()} could not be reached and {ref} is not in the local cache; "
                "check the network connection (or HF_ENDPOINT).")
    if isinstance(exc, hfu.EntryNotFoundError):
        return f"The {where} has no file {ref.filename!r}{at}."
    status = _http_status(exc)
    if status is not None:
        return f"The hub at {endpoint()} answered HTTP {status} for {ref}."
    if isinstance(exc, ValueError):
        return f"{ref} cannot be downloaded ({_first_line(exc)})."
    return (f"{ref} could not be downloaded from {endpoint()} ({type(exc).__name__}: {_first_line(exc)}); "
            "check the network connection.")


def _http_status(exc: BaseException | None) -> int | None:
    """The HTTP status behind an error or anything in its cause chain, if there was a response."""
    seen = 0
    while exc is not None and seen < 8:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
