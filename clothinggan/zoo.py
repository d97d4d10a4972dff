"""Known downloadable models and their safe download: checksum, size cap, cache, progress.

A zoo entry says where a model lives and what it is (format, resolution, licence, named GANSpace
directions); ``fetch`` brings it into the cache once, atomically, and never leaves a partial file.
"""
from __future__ import annotations

import hashlib
import html.parser
import http.client
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from clothinggan import hub
from clothinggan.errors import DownloadError
from clothinggan.paths import atomic_path, cache_dir, file_sha256

Progress = Callable[[int, Optional[int]], None]  # (bytes done, total bytes or None when unknown)
CHUNK_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 2 * 1024**3   # no StyleGAN2 generator file is larger
HTML_PAGE_LIMIT = 1 << 20        # a Drive confirm page is a few kB; never read more than this
TIMEOUT_S = 60
SUFFIX = {"rosinality": ".pt", "nvlabs": ".pkl", "safetensors": ".safetensors"}


@dataclass(frozen=True)
class Direction:
    """A named edit: move along GANSpace component ``component`` on ws ``layers[0] … layers[1]-1``.

    strength: the default slider value, None when the source does not say.
    """

    name: str
    component: int
    layers: tuple[int, int]
    strength: float | None = None


@dataclass(frozen=True)
class ZooModel:
    """One downloadable model.

    name:        registry key (``load_generator(name)`` accepts it).
    title:       human title for menus.
    url:         where to download it (Google Drive links are handled; ``hf://owner/repo[@rev]/file``
                 goes through huggingface_hub and its cache).
    sha256:      expected checksum; None: recorded on first download and enforced afterwards.
    format:      "rosinality", "nvlabs" or "safetensors".
    resolution:  output size in pixels.
    licence:     its licence, or where to find it.
    description: one sentence on what it draws.
    directions:  named GANSpace directions known for it.
    components_file: the GANSpace components cache those directions index, if known.
    edit_range:  the slider range its directions were designed for.
    max_bytes:   download size cap.
    """

    name: str
    title: str
    url: str
    sha256: str | None
    format: str
    resolution: int
    licence: str
    description: str
    directions: tuple[Direction, ...] = ()
    components_file: str | None = None
    edit_range: tuple[float, float] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def filename(self) -> str:
        return self.name + SUFFIX.get(self.format, ".bin")

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style access, for callers that read entries like dicts (``info.get("title")``)."""
        return getattr(self, key, default)


# The 16 ws of a 512-px model: ClothingGAN's demo edited 0..14 and left the last two out; we use all.
_LOOKBOOK_LAYERS = (0, 16)
LOOKBOOK_DIRECTIONS = tuple(
    Direction(name, i, _LOOKBOOK_LAYERS) for i, name in enumerate(
        ["Sleeve & Size", "Dress - Jacket", "Female Coat", "Coat", "Graphics", "Dark", "Less Cleavage"]))

MODELS: dict[str, ZooModel] = {
    "clothinggan-lookbook": ZooModel(
        name="clothinggan-lookbook",
        title="ClothingGAN lookbook (512 px)",
        url="https://drive.google.com/uc?export=download&id=1-F-RMkbHUv_S_k-_olh43mu5rDUMGYKe",
        sha256=None,
        format="rosinality",
        resolution=512,
        licence="see mfrashad/ClothingGAN",
        description="StyleGAN2 trained by ClothingGAN on lookbook garment photos (rosinality checkpoint).",
        directions=LOOKBOOK_DIRECTIONS,
        components_file="stylegan2-lookbook_style_ipca_c80_n300000_w.npz",
        edit_range=(-20.0, 20.0),
        max_bytes=1024**3,
    ),
}


# -- download --------------------------------------------------------------------------------------
class _ConfirmFormParser(html.parser.HTMLParser):
    """Collects the first form's action and hidden inputs (Drive's "download anyway" page)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def confirm_url(page: str, url: str) -> str | None:
    """The URL behind Google Drive's large-file warning page, or None if the page has none."""
    parser = _ConfirmFormParser()
    parser.feed(page)
    if parser.action is not None and "confirm" in parser.fields:
        action = urllib.parse.urljoin(url, parser.action or url)
        return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(parser.fields)
    # Older Drive pages put the token in a link: ...&confirm=XXXX&...
    marker = page.find("confirm=")
    token = _leading_token(page[marker + len("confirm="):]) if marker >= 0 else ""
    if token:
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query), confirm=token)
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None


def _leading_token(text: str) -> str:
    """The URL-safe characters at the start of ``text`` (a confirm token ends at '&' or a quote)."""
    out = []
    for ch in text[:100]:
        if not (ch.isalnum() or ch in "-_"):
            break
        out.append(ch)
    return "".join(out)


def _opener() -> urllib.request.OpenerDirector:
    # Drive ties the confirm token to a cookie from the warning page, so keep cookies per fetch.
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _stream_to(response: Any, out: Any, model: ZooModel, progress: Progress | None) -> str:
    """Copy the body into ``out`` in chunks, enforcing the size cap and Content-Length; return sha256."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    if total is not None and total > model.max_bytes:
        raise DownloadError(f"{model.name} is {total} bytes, more than the {model.max_bytes}-byte limit.")
    digest, done = hashlib.sha256(), 0
    while chunk := response.read(CHUNK_BYTES):
        done += len(chunk)
        if done > model.max_bytes:
            raise DownloadError(f"{model.name} grew past the {model.max_bytes}-byte limit while downloading.")
        digest.update(chunk)
        out.write(chunk)
        if progress is not None:
            progress(done, total)
    if total is not None and done != total:
        raise DownloadError(f"The download of {model.name} stopped after {done} of {total} bytes.")
    return digest.hexdigest()


def _download(model: ZooModel, out: Any, progress: Progress | None) -> str:
    """Fetch ``model.url`` into ``out`` (following one Drive confirm page); return its sha256."""
    url, opener = model.url, _opener()
    for _attempt in range(2):
        request = urllib.request.Request(url, headers={"User-Agent": "clothinggan"})
        with opener.open(request, timeout=TIMEOUT_S) as response:
            if response.headers.get_content_type() != "text/html":
                return _stream_to(response, out, model, progress)
            page = response.read(HTML_PAGE_LIMIT).decode("utf-8", "replace")
        next_url = confirm_url(page, url)
        if next_url is None:
            break
        url = next_url
    raise DownloadError(f"{model.url} returned a web page instead of the model file "
                        "(the link may be private, gone, or over its download quota).")


def record_path(path: Path) -> Path:
    """The small JSON beside a cached file that records its checksum and origin."""
    return path.with_name(path.name + ".json")


def _record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _recorded_sha256(path: Path) -> str | None:
    return _record(path).get("sha256")


def _write_record(dest: Path, sha: str, url: str, size: int, **extra: Any) -> None:
    record = {"sha256": sha, "url": url, "bytes": size,
              "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    record_path(dest).write_text(json.dumps(record, indent=1))


def _fetch_from_hub(model: ZooModel, progress: Progress | None) -> Path:
    """A zoo entry on the Hugging Face Hub: huggingface_hub downloads and caches it, we check its checksum.

    The file stays in the hub cache; the record beside our cache path remembers which cached file was
    verified (path, size, mtime), so later loads do not hash a GB file again.
    """
    path = hub.download(model.url, progress=progress, max_bytes=model.max_bytes)
    dest = cache_dir("models") / model.filename
    blob, known = path.resolve(), _record(dest)
    stat = blob.stat()
    seen = {"blob": str(blob), "mtime_ns": stat.st_mtime_ns}
    expected = (model.sha256 or known.get("sha256") or "").lower() or None
    if (expected is not None and known.get("sha256") == expected and known.get("bytes") == stat.st_size
            and all(known.get(k) == v for k, v in seen.items())):
        return path  # this very file was verified before
    sha = file_sha256(blob)
    if expected is not None and sha != expected:
        raise DownloadError(f"{model.url} does not match the checksum known for {model.name} "
                            f"(got sha256 {sha[:12]}…, expected {expected[:12]}…); the repo may have changed: "
                            "pin a revision with hf://owner/repo@revision/….")
    _write_record(dest, sha, model.url, stat.st_size, **seen)
    return path


def fetch(name: str, progress: Progress | None = None) -> Path:
    """Return the cached file of zoo model ``name``, downloading and verifying it first if needed.

    Raises DownloadError (one sentence) on unknown names, HTTP errors, no network, size-cap or
    checksum failures; a failed download leaves no file behind.
    """
    if name not in MODELS:
        raise DownloadError(f"{name!r} is not a known model (known: {', '.join(sorted(MODELS))}).")
    model = MODELS[name]
    if hub.is_hub_spec(model.url):
        return _fetch_from_hub(model, progress)
    folder = cache_dir("models")
    dest = folder / model.filename
    if dest.is_file():
        return dest  # only verified downloads are ever renamed into place
    # Trust on first use: a checksum recorded by an earlier download binds later ones too.
    expected = model.sha256 or _recorded_sha256(dest)
    try:
        with atomic_path(dest) as tmp:  # only a verified download is renamed into place
            with open(tmp, "wb") as out:
                sha = _download(model, out, progress)
            if expected is not None and sha != expected.lower():
                raise DownloadError(f"The download of {model.name} does not match its expected checksum "
                                    f"(got sha256 {sha[:12]}…, expected {expected[:12]}…).")
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"The server answered HTTP {exc.code} ({exc.reason}) for {model.url}.") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise DownloadError(f"{model.name} could not be downloaded from {urllib.parse.urlsplit(model.url).netloc} "
                            f"({reason}); check the network connection.") from None
    except OSError as exc:  # not the network: the cache folder (disk full, permissions)
        raise DownloadError(f"{model.name} could not be saved in {folder} ({exc.strerror or exc}).") from None
    if model.sha256 is None:
        _write_record(dest, sha, model.url, dest.stat().st_size)
    return dest
