"""A designer's browser, minus the browser: Streamlit's wire protocol from Python, for load tests.

A headless Chromium spends far more CPU loading Streamlit's front end than the server spends on a
click, so twenty of them on the server's own two cores measure the browsers, not the app. This
client sends the server exactly what the front end sends — the page's HTML and static files, one
WebSocket carrying ``BackMsg`` reruns with widget states, the media files each run shows — and
reads the same ``ForwardMsg`` replies, at a few milliseconds of client CPU per click. What it does
not do is lay out or paint the page.

It covers the widgets the load test drives (buttons, form submits, text inputs, sliders, page
links, fragments); others keep the values the server already has.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = {0: "ok", 1: "compile error", 2: "early for rerun", 3: "fragment ok"}
STATIC_REF = re.compile(r'(?:src|href)="\./(static/[^"]+)"')


class ProtocolError(RuntimeError):
    """The server answered something a browser would show as broken (an HTTP error, a closed socket)."""


@dataclass
class Element:
    """One element of the page as the last run left it: its kind and its protobuf message."""
    kind: str
    proto: Any
    fragment_id: str = ""

    @property
    def widget_id(self) -> str:
        return getattr(self.proto, "id", "")


@dataclass
class RunResult:
    """What one click made the server do: the run's outcome, its messages and the media fetched."""
    seconds: float
    status: str
    messages: int
    media_fetched: int
    exceptions: list[str] = field(default_factory=list)


async def http_get(url: str, timeout: float = 120.0) -> bytes:
    """GET over a fresh HTTP/1.1 connection with gzip accepted, as a browser asks; the raw body."""
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        writer.write(f"GET {path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: gzip\r\n"
                     f"Connection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        raise ProtocolError(f"GET {path} answered {head.splitlines()[0].decode(errors='replace') if head else 'nothing'}")
    return body


class ProtocolSession:
    """One browser tab of the app: ``open`` it, then ``click``/``set``/``goto`` and read ``elements``."""

    def __init__(self, base_url: str, fetch_static: bool = True, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.fetch_static = fetch_static
        self.timeout = timeout
        self.elements: dict[tuple[int, ...], Element] = {}
        self.pages: dict[str, str] = {}        # page title -> page_script_hash
        self.page_hash = ""
        self.query_string = ""
        self._values: dict[str, WidgetState] = {}  # widget id -> the value this tab holds for it
        self._media_seen: set[str] = set()        # a browser's cache: each media URL fetched once
        self._ws: Any = None

    # -- connection --------------------------------------------------------------------------------
    async def open(self) -> RunResult:
        """Load the page as a fresh browser does: HTML, its static files, the socket, the first run."""
        start = time.perf_counter()
        if self.fetch_static:
            html = (await http_get(self.base_url + "/", self.timeout)).decode(errors="replace")
            await asyncio.gather(*(http_get(f"{self.base_url}/{ref}", self.timeout)
                                   for ref in sorted(set(STATIC_REF.findall(html)))))
        ws_url = "ws" + self.base_url[len("http"):] + "/_stcore/stream"
        self._ws = await asyncio.wait_for(
            websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None, compression=None), self.timeout)
        result = await self._run(fragment_id="")
        result.seconds = time.perf_counter() - start
        return result

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    # -- what the page shows -------------------------------------------------------------------------
    def widget(self, key: str) -> Element:
        """The widget whose user key is ``key`` (Streamlit ids end in ``-<key>``)."""
        for element in self.elements.values():
            if element.widget_id.endswith(f"-{key}"):
                return element
        raise KeyError(f"no widget with key {key!r} on the page")

    def widgets(self, kind: str, label: str | None = None, key_prefix: str | None = None) -> list[Element]:
        """Widgets of a kind, in page order, optionally by exact label or key prefix."""
        found = []
        for path in sorted(self.elements):
            element = self.elements[path]
            if element.kind != kind or (label is not None and element.proto.label != label):
                continue
            if key_prefix is not None and not re.search(rf"-{re.escape(key_prefix)}[^-]*$", element.widget_id):
                continue
            found.append(element)
        return found

    def texts(self) -> list[str]:
        """Every markdown body, heading and image caption on the page."""
        out = []
        for element in self.elements.values():
            if element.kind in ("markdown", "heading", "text", "caption"):
                out.append(getattr(element.proto, "body", ""))
            elif element.kind == "imgs":
                out.extend(img.caption for img in element.proto.imgs)
            elif element.kind == "alert":
                out.append(element.proto.body)
        return out

    def errors(self) -> list[str]:
        """Error boxes and exceptions on the page."""
        out = []
        for element in self.elements.values():
            if element.kind == "exception":
                out.append(f"{element.proto.type}: {element.proto.message}")
            elif element.kind == "alert" and element.proto.format == 1:  # Alert.ERROR
                out.append(element.proto.body)
        return out

    # -- what a person does --------------------------------------------------------------------------
    def set_text(self, element: Element, text: str) -> None:
        """Type into a text input (sent with the next run, as a form holds it until submit)."""
        self._values[element.widget_id] = WidgetState(id=element.widget_id, string_value=text)

    async def set_slider(self, element: Element, values: list[float]) -> RunResult:
        """Move a slider: a rerun (of its fragment only, when it is in one)."""
        self._values[element.widget_id] = state = WidgetState(id=element.widget_id)
        state.double_array_value.data.extend(values)
        return await self._run(element.fragment_id)

    async def click(self, element: Element) -> RunResult:
        """Press a button (or a form's submit button): one run with its trigger set."""
        return await self._run(element.fragment_id, trigger=element.widget_id)

    async def goto(self, title: str) -> RunResult:
        """Follow a page link in the navigation."""
        self.page_hash = self.pages[title]
        self._values.clear()  # the new page's widgets start from their defaults, as in the browser
        return await self._run(fragment_id="")

    # -- the protocol ----------------------------------------------------------------------------------
    async def _run(self, fragment_id: str, trigger: str | None = None) -> RunResult:
        start = time.perf_counter()
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_hash
        state.fragment_id = fragment_id
        live = {e.widget_id for e in self.elements.values() if e.widget_id}
        for widget_id, value in self._values.items():
            if widget_id in live and widget_id != trigger:
                state.widget_states.widgets.append(value)
        if trigger:
            state.widget_states.widgets.append(WidgetState(id=trigger, trigger_value=True))
        await self._ws.send(msg.SerializeToString())
        messages, status, new_media = await self._receive_until_finished(fragment_id)
        await asyncio.gather(*(http_get(self.base_url + url, self.timeout) for url in new_media))
        return RunResult(time.perf_counter() - start, status, messages, len(new_media), self.errors())

    async def _receive_until_finished(self, fragment_id: str) -> tuple[int, str, list[str]]:
        """Apply ForwardMsgs until the run (and any rerun it asked for) has finished."""
        count, new_media = 0, []
        fresh: dict[tuple[int, ...], Element] = {}
        full_run = not fragment_id
        while True:
            data = await asyncio.wait_for(self._ws.recv(), self.timeout)
            count += 1
            fm = ForwardMsg()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                fresh = {}
            elif kind == "page_info_changed":
                self.query_string = fm.page_info_changed.query_string
            elif kind == "navigation":
                self.pages = {p.page_name: p.page_script_hash for p in fm.navigation.app_pages}
                if not self.page_hash:
                    self.page_hash = fm.navigation.page_script_hash
                full_run = True
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                new = fm.delta.new_element
                ekind = new.WhichOneof("type")
                element = Element(ekind, getattr(new, ekind), fm.delta.fragment_id)
                fresh[tuple(fm.metadata.delta_path)] = element
                if ekind == "imgs":
                    for img in element.proto.imgs:
                        if img.url.startswith("/") and img.url not in self._media_seen:
                            self._media_seen.add(img.url)
                            new_media.append(img.url)
            elif kind == "script_finished":
                status = FINISHED.get(fm.script_finished, str(fm.script_finished))
                if status == "early for rerun":  # st.rerun: the next run follows on the same socket
                    fresh, full_run = {}, True
                    continue
                if full_run and status == "ok":
                    self.elements = fresh  # what the last full run drew is the page now
                else:
                    self.elements.update(fresh)
                return count, status, new_media
