"""Models from the Hugging Face Hub (``hf://owner/repo[@rev]/file``) against a local fake hub.

Never touches the internet: a threaded http.server on 127.0.0.1 answers the HEAD/GET requests
that ``huggingface_hub.hf_hub_download`` makes on ``/{repo}/resolve/{revision}/{file}``, with the
headers the real hub sends (X-Repo-Commit, quoted ETag, Content-Length, X-Linked-Etag/-Size for
LFS files, X-Error-Code on 404s). HF_ENDPOINT and the hub cache point at them per test.
"""
from __future__ import annotations

import hashlib
import http.server
import shutil
import time
from pathlib import Path
from typing import Iterator

import huggingface_hub.constants
import pytest
import torch

import clothinggan as cg
from clothinggan.testing import tiny_net
from clothinggan import hub, zoo
from clothinggan.errors import CheckpointError, DownloadError
from conftest import local_http_server, shared_dir

REPO = "acme/tiny-gan"
MAIN, V1 = "a" * 40, "b" * 40          # commit hashes of branch "main" and tag "v1"
REFS = {"main": MAIN, "v1": V1, MAIN: MAIN, V1: V1}
PKL = "nvlabs/nvlabs-s16.pkl"


class FakeHub(http.server.BaseHTTPRequestHandler):
    """``files[(commit, filename)] = bytes``; LFS files (``lfs``) get X-Linked-Etag/-Size like the hub's."""

    files: dict[tuple[str, str], bytes] = {}
    lfs: set[str] = set()
    log: list[tuple[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _error(self, code: int, error_code: str, commit: str | None = None) -> None:
        self.send_response(code)
        self.send_header("X-Error-Code", error_code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bool) -> None:
        FakeHub.log.append((self.command, self.path))
        repo, sep, rest = self.path.lstrip("/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        if not sep or repo != REPO:
            return self._error(401, "RepoNotFound")   # the hub answers 401 for missing and private repos alike
        commit = REFS.get(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound")
        data = FakeHub.files.get((commit, filename))
        if data is None:
            return self._error(404, "EntryNotFound", commit)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", '"%s"' % hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        if filename in FakeHub.lfs:
            self.send_header("X-Linked-Etag", '"%s"' % hashlib.sha256(data).hexdigest())
            self.send_header("X-Linked-Size", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def gets(filename: str) -> list[str]:
    return [path for method, path in FakeHub.log if method == "GET" and path.endswith("/" + filename)]


def same_images(a: cg.Generator, b: cg.Generator) -> bool:
    with torch.no_grad():
        ia = a.synthesis(a.seeds_to_ws([0, 1, 2], psi=0.7), noise_mode="const")
        ib = b.synthesis(b.seeds_to_ws([0, 1, 2], psi=0.7), noise_mode="const")
    return torch.equal(ia, ib)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The served files, also kept as local files to load directly for comparison.

    The NVlabs pickle is the shared reference fixture, copied at test time (tests that use it ask
    for ``fixtures_dir`` too, so they are skipped where the shared folder is absent).
    """
    root = tmp_path_factory.mktemp("served")
    main_st = cg.save_generator(cg.Generator(tiny_net(0)), root / "main.safetensors")
    v1_st = cg.save_generator(cg.Generator(tiny_net(1)), root / "v1.safetensors")
    FakeHub.files = {(MAIN, "tiny.safetensors"): main_st.read_bytes(), (V1, "tiny.safetensors"): v1_st.read_bytes()}
    FakeHub.lfs = {PKL}
    out = {"main": main_st, "v1": v1_st}
    source = shared_dir() / "fixtures" / "stylegan2" / "nvlabs-s16-sanitized.pkl"
    if source.is_file():
        out["pkl"] = Path(shutil.copy(source, root / "nvlabs-s16.pkl"))
        FakeHub.files[(MAIN, PKL)] = out["pkl"].read_bytes()
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_http_server(FakeHub) as url:
        yield url


@pytest.fixture(autouse=True)
def fake_hub(server: str, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_ENDPOINT → the fake hub, an empty hub cache under tmp_path, online, no token, no proxy."""
    monkeypatch.setenv("HF_ENDPOINT", server)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cg-cache"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # huggingface_hub read these at import time; the runner's environment may have set them. The
    # endpoint constants are patched too so that nothing can reach huggingface.co even if the
    # endpoint= that clothinggan passes were lost (test_unreachable_hub checks that it is not).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server + "/{repo_id}/resolve/{revision}/{filename}")
    FakeHub.log.clear()
    return tmp_path / "hf-home" / "hub"


# -- addresses ---------------------------------------------------------------------------------------
def test_parse_addresses() -> None:
    assert hub.parse("hf://o/r/f.pkl") == hub.HubFile("o/r", "f.pkl")
    assert hub.parse("hf://o/r@v1.0/sub/dir/f.safetensors") == hub.HubFile("o/r", "sub/dir/f.safetensors", "v1.0")
    assert hub.parse("hf://o/r@refs%2Fpr%2F3/f.pt").revision == "refs/pr/3"
    assert hub.parse("hf://datasets/o/r/f.pkl").repo_type == "dataset"
    assert str(hub.parse("hf://o/r@refs%2Fpr%2F3/f.pt")) == "hf://o/r@refs%2Fpr%2F3/f.pt"
    for bad in ("hf://o/f.pkl", "hf://o/r/", "hf://o//f.pkl", "hf://o/r@/f.pkl", "hf://o/r/../f.pkl",
                "hf://o/r/README.md"):
        with pytest.raises(CheckpointError):
            hub.parse(bad)


def test_bad_address_is_a_typed_error_before_any_request() -> None:
    with pytest.raises(CheckpointError, match="repo and a file"):
        cg.load_generator("hf://acme/tiny.pkl")
    assert FakeHub.log == []


# -- loading -----------------------------------------------------------------------------------------
def test_safetensors_from_hub_matches_direct_load_and_is_cached(files: dict[str, Path], fake_hub: Path) -> None:
    G = cg.load_generator(f"hf://{REPO}/tiny.safetensors")
    assert same_images(G, cg.load_generator(files["main"]))
    assert G.name == f"hf://{REPO}/tiny.safetensors" and G.meta["hub"] == G.name
    assert len(gets("tiny.safetensors")) == 1
    assert fake_hub in Path(G.meta["source"]).parents  # in huggingface_hub's cache, under HF_HOME
    again = cg.load_generator(f"hf://{REPO}/tiny.safetensors")
    assert len(gets("tiny.safetensors")) == 1  # second load: at most a HEAD, never the file again
    assert again.fingerprint == G.fingerprint


def test_nvlabs_pickle_from_hub_loads_safely(files: dict[str, Path], fixtures_dir: Path) -> None:
    G = cg.load_generator(f"hf://{REPO}/{PKL}")
    assert same_images(G, cg.load_generator(files["pkl"]))
    assert G.meta["format"] == cg.load_generator(files["pkl"]).meta["format"]
    assert len(gets("nvlabs-s16.pkl")) == 1


@pytest.mark.parametrize("revision", ["v1", V1])
def test_revision_pinning(files: dict[str, Path], revision: str) -> None:
    G = cg.load_generator(f"hf://{REPO}@{revision}/tiny.safetensors")
    assert ("HEAD", f"/{REPO}/resolve/{revision}/tiny.safetensors") in FakeHub.log
    assert all(f"/resolve/{revision}/" in path for _, path in FakeHub.log)
    assert same_images(G, cg.load_generator(files["v1"]))
    assert not same_images(G, cg.load_generator(files["main"]))


def test_pinned_commit_in_cache_needs_no_request() -> None:
    cg.load_generator(f"hf://{REPO}@{V1}/tiny.safetensors")
    FakeHub.log.clear()
    cg.load_generator(f"hf://{REPO}@{V1}/tiny.safetensors")
    assert FakeHub.log == []


# -- failures ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "words"), [
    (f"hf://{REPO}/missing.pkl", "has no file 'missing.pkl'"),
    (f"hf://{REPO}@v9/tiny.safetensors", "has no revision 'v9'"),
    ("hf://acme/nope/tiny.safetensors", "no model repo 'acme/nope'.*HF_TOKEN"),
])
def test_missing_repo_revision_or_file(spec: str, words: str) -> None:
    with pytest.raises(DownloadError, match=words) as info:
        cg.load_generator(spec)
    assert "\n" not in str(info.value)


def test_offline_with_empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="not in the local cache.*HF_HUB_OFFLINE") as info:
        cg.load_generator(f"hf://{REPO}/tiny.safetensors")
    assert "\n" not in str(info.value)
    assert FakeHub.log == []


def test_offline_with_cache_loads_without_requests(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cg.load_generator(f"hf://{REPO}/tiny.safetensors")
    FakeHub.log.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_images(cg.load_generator(f"hf://{REPO}/tiny.safetensors"), cg.load_generator(files["main"]))
    assert FakeHub.log == []


def test_unreachable_hub_fails_at_once_or_uses_the_cache(files: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: one connection attempt, not huggingface_hub's half a minute of retries."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    cg.load_generator(f"hf://{REPO}/tiny.safetensors")          # online once: now cached
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    assert same_images(cg.load_generator(f"hf://{REPO}/tiny.safetensors"), cg.load_generator(files["main"]))
    with pytest.raises(DownloadError, match="could not be reached.*network") as info:
        cg.load_generator(f"hf://{REPO}/other.safetensors")
    assert "\n" not in str(info.value)
    assert slept == []  # no retry back-off
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # behind a proxy the hub itself is asked
    assert not hub.unreachable("http://127.0.0.1:9")


# -- zoo entries on the hub ----------------------------------------------------------------------------
def register(monkeypatch: pytest.MonkeyPatch, url: str, sha256: str | None = None, **kw: object) -> str:
    model = zoo.ZooModel(name="hub-model", title="Hub test", url=url, sha256=sha256, format="safetensors",
                         resolution=16, licence="CC0", description="tiny", **kw)
    monkeypatch.setitem(zoo.MODELS, model.name, model)
    return model.name


def test_zoo_entry_on_hub_with_progress_and_checksum(files: dict[str, Path], fixtures_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = files["pkl"].read_bytes()
    name = register(monkeypatch, f"hf://{REPO}/{PKL}", hashlib.sha256(data).hexdigest())
    seen: list[tuple[int, int | None]] = []
    path = zoo.fetch(name, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == data and seen and seen[-1] == (len(data), len(data))
    assert same_images(cg.load_generator(name), cg.load_generator(files["pkl"]))
    assert len(gets("nvlabs-s16.pkl")) == 1


def test_zoo_entry_on_hub_records_then_enforces_checksum(monkeypatch: pytest.MonkeyPatch) -> None:
    name = register(monkeypatch, f"hf://{REPO}/tiny.safetensors")
    zoo.fetch(name)
    register(monkeypatch, f"hf://{REPO}@v1/tiny.safetensors")  # same entry, other content: refused
    with pytest.raises(DownloadError, match="checksum.*pin a revision"):
        zoo.fetch(name)


def test_zoo_entry_on_hub_size_cap(fake_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = register(monkeypatch, f"hf://{REPO}/tiny.safetensors", max_bytes=1000)
    with pytest.raises(DownloadError, match="limit"):
        zoo.fetch(name, progress=lambda done, total: None)
    assert not [p for p in fake_hub.rglob("*") if p.is_file() and p.stat().st_size > 1000]
