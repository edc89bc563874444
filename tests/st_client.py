"""A small client that speaks Streamlit's own websocket protocol to a `streamlit run` on 127.0.0.1.

What a browser tab does, without the browser: load the page over HTTP (the
server's cookies land in a cookie jar), open `/_stcore/stream` with the XSRF
token as the second subprotocol, send `BackMsg`s (a rerun with the URL's query
string and page name, widget values and button clicks, the reruns a
`run_every` fragment's timer sends, `clear_cache`) and fold the `ForwardMsg`s
it gets back into the page's element tree, so a test can read a page's title,
texts, buttons, progress bars and alerts, and time each answer. It also plays
the part of the lab's poll component (`lab_ui/poll.py`): what its JavaScript
does in a browser (ask the lab's HTTP route, announce news to its fragment) the
client does in a thread. Used by the real-server tests, the flood test, the
raw-websocket probes and the load benchmark (tests/load_bench.py). One client
is one browser tab, with one reader thread that receives, keeps the element
tree and fires the fragment timers, and one for the poll component's questions.

Bounded everywhere: every wait has a timeout, the connection has a lifetime
after which the client closes itself, and it refuses any host but 127.0.0.1
(proxies from the environment are ignored). Cookies behave like a browser's:
a new client starts with an empty jar (a fresh browser); pass `cookies=` of
another client to be the same browser again, or `page_load=False` for a bare
websocket that never loaded the page and sends no cookie at all.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

HOST = "127.0.0.1"
XSRF_COOKIE = "_streamlit_xsrf"
NO_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend sends as the second subprotocol when it has no token
MAX_CACHED = 500  # ForwardMsgs kept for `ref_hash` answers (the frontend keeps a similar, age-bounded cache)
MAX_MESSAGE = 64 * 2**20  # one ForwardMsg; a chart of a long run is a few MB
POLL_COMPONENT = "rnnlab_poll"  # the lab's live panel asks an HTTP route whether its run has news (lab_ui/poll.py)
POLL_REDRAW_GRACE = 5.0  # seconds: news announced but no redraw yet -> announce again (as the component's JS)
FINAL = {
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
}
# The value field of a widget's state by element type (the `value_type` each widget registers with).
VALUE_FIELDS = {
    "checkbox": "bool_value",
    "slider": "double_array_value",
    "number_input": "double_value",
    "text_input": "string_value",
    "text_area": "string_value",
    "selectbox": "string_value",
    "radio": "string_value",
    "multiselect": "string_array_value",
}


class ServerGone(ConnectionError):
    """The connection is closed (server stopped, lifetime over, or `close()`); nothing more will arrive."""


class _LocalRedirects(urllib.request.HTTPRedirectHandler):
    """Follow an HTTP redirect only to 127.0.0.1 (a browser would follow any; this client talks to no one else)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib calls it with these
        if urllib.parse.urlsplit(newurl).hostname != HOST:
            raise ServerGone(f"refusing a redirect away from {HOST}: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass(frozen=True)
class Element:
    """One element of the page as drawn: `kind` is the Element proto's field ("heading", "button", ...)."""

    path: tuple[int, ...]
    kind: str
    text: str  # body of a heading/markdown/text/alert, label of a widget, text of a progress bar, exception message
    widget_id: str = ""
    fragment_id: str = ""
    detail: str = ""  # alert: "error"/"warning"/"info"/"success"; heading: its tag ("h1"); exception: its type
    proto: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Page:
    """A snapshot of what the tab shows, in document order."""

    elements: tuple[Element, ...]
    tab_title: str
    query_string: str

    def of(self, *kinds: str) -> list[Element]:
        return [e for e in self.elements if e.kind in kinds]

    @property
    def title(self) -> str:
        """The page's first h1 heading (`st.title`), else the browser tab's title."""
        return next((e.text for e in self.of("heading") if e.detail == "h1"), self.tab_title)

    @property
    def headings(self) -> list[str]:
        return [e.text for e in self.of("heading")]

    @property
    def texts(self) -> list[str]:
        """Every piece of text on the page: headings, markdown, captions, plain text, alerts, progress bars."""
        return [e.text for e in self.of("heading", "markdown", "text", "alert", "progress", "exception") if e.text]

    @property
    def progress(self) -> list[str]:
        return [e.text for e in self.of("progress")]

    @property
    def alerts(self) -> list[tuple[str, str]]:
        return [(e.detail, e.text) for e in self.of("alert")]

    @property
    def exceptions(self) -> list[str]:
        return [f"{e.detail}: {e.text}" for e in self.of("exception")]

    @property
    def buttons(self) -> list[str]:
        return [e.text for e in self.of("button")]

    def widget(self, label: str, kinds: Iterable[str] | None = None) -> Element | None:
        wanted = set(kinds) if kinds else None
        return next(
            (e for e in self.elements if e.widget_id and e.text == label and (wanted is None or e.kind in wanted)), None
        )

    def has_text(self, needle: str) -> bool:
        return any(needle in t for t in self.texts)


@dataclass
class _Node:
    element: Element | None  # None: a block (container)
    run_id: str
    fragment_id: str


@dataclass
class _PollTarget:
    """The poll component as mounted: its ids, its data (route URL, token drawn, rates), when it asks next."""

    element_id: str
    fragment_id: str
    data: dict[str, Any]
    page: str
    due: float | None
    announced: float | None = None
    fallback: bool = False


@dataclass
class _Request:
    what: str
    fragment_id: str  # "" for the whole page
    sent: float
    answered: float | None = None


class StClient:
    """One browser tab on `base_url` (http://127.0.0.1:PORT). Use as a context manager, or call `close()`.

    `timeout`: default bound of each wait; `lifetime`: the client closes itself after this many
    seconds whatever happens; `follow_timers`: send a `run_every` fragment's reruns like the
    browser's timer (off: only `rerun_fragment` sends them); `cookies`: another client's jar to be
    the same browser; `page_load=False`: a bare websocket (no HTTP page load, no cookie, no Origin); `keepalive`:
    seconds the server may take to answer a ping before the client calls it gone (a browser sends no pings: a
    benchmark that floods the server with megabytes gives it longer). `on_message(t)`: called with the time of
    every message the server sent (a benchmark's timeline). `follow_timers` also switches the poll component's
    questions on and off.
    """

    def __init__(
        self,
        base_url: str,
        *,
        cookies: http.cookiejar.CookieJar | None = None,
        page_load: bool = True,
        timeout: float = 60.0,
        lifetime: float = 600.0,
        follow_timers: bool = True,
        locale: str = "en-US",
        keepalive: float = 10.0,
        on_message: Callable[[float], None] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname != HOST or parts.port is None:
            raise ValueError(f"st_client talks only to http://{HOST}:PORT, not {base_url!r}")
        self.base = f"http://{HOST}:{parts.port}"
        self.cookies = cookies if cookies is not None else http.cookiejar.CookieJar()
        self.page_load, self.timeout, self.follow_timers, self.locale = page_load, timeout, follow_timers, locale
        self.keepalive = keepalive
        self.on_message = on_message  # called (monotonic time) in the reader thread for every message received
        self._deadline = time.monotonic() + lifetime
        self._http = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies), _LocalRedirects()
        )
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self.closed_reason: str | None = None
        # what the tab knows (guarded by _cond)
        self._tree: dict[tuple[int, ...], _Node] = {}
        self._run_id = ""
        self._run_fragments: tuple[str, ...] = ()
        self.running = False
        self.finished_runs = 0
        self.dropped_fragment_runs = 0  # fragment runs the server cut short for the next rerun (nothing shown)
        self.fragment_redraws = 0  # fragment runs that finished and reached the tab
        self._polls = {"sent": 0, "answered": 0, "fast": 0}  # timer reruns and poll requests, see poll_stats
        self._poller: threading.Thread | None = None
        self._poll_target: _PollTarget | None = None
        self.session_id = ""
        self.page_script_hash = ""
        self.path = ""
        self.query_string = ""
        self.tab_title = ""
        self.pages: dict[str, str] = {}  # url_pathname -> page_script_hash
        self.page_not_found = False
        self._values: dict[str, WidgetState] = {}
        self._timers: dict[str, tuple[float, float]] = {}  # fragment id -> (interval, next due, monotonic)
        self._cache: dict[str, ForwardMsg] = {}
        self.unresolved_refs = 0
        self._run_started = 0.0
        self.requests: list[_Request] = []  # not yet answered
        self.answers: list[tuple[str, float]] = []  # (what was sent, seconds until the run it started finished)

    # -- connection -------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str = "", query: str = "", timeout: float | None = None) -> float:
        """Open `/<path>?<query>` as a new tab would (connecting first if needed); seconds until its run finished."""
        self.path, self.query_string = path.strip("/"), query.lstrip("?")
        if self._ws is None:
            self._connect(timeout or self.timeout)
            request = self._send_rerun("open", page_name=self.path, page_hash="")
        else:  # navigating inside the tab: the frontend names the page by its hash once it knows it
            with self._cond:
                page_hash = self.pages.get(self.path, "")
            request = self._send_rerun("open", page_name="" if page_hash else self.path, page_hash=page_hash)
        return self.wait_answer(request, timeout)

    def _connect(self, timeout: float) -> None:
        url = f"{self.base}/{self.path}" + (f"?{self.query_string}" if self.query_string else "")
        if self.page_load:  # the HTML page, then the two pings the frontend makes before its websocket
            for address in (url, f"{self.base}/_stcore/health", f"{self.base}/_stcore/host-config"):
                try:
                    with self._http.open(address, timeout=timeout) as response:
                        response.read()
                except OSError as exc:  # refused, reset, timed out, an HTTP error status
                    raise ServerGone(f"cannot load {address}: {exc}") from exc
        xsrf = next((c.value for c in self.cookies if c.name == XSRF_COOKIE), None) if self.page_load else None
        headers = {}
        cookie = self._cookie_header() if self.page_load else None
        if cookie:
            headers["Cookie"] = cookie
        port = urllib.parse.urlsplit(self.base).port
        try:
            # Our own socket to 127.0.0.1: with it, websockets follows no redirect anywhere else.
            sock = socket.create_connection((HOST, port), timeout=timeout)
            sock.settimeout(None)  # the handshake is bounded by open_timeout, later reads by recv(timeout)
            self._ws = connect(
                f"ws://{HOST}:{port}/_stcore/stream",
                sock=sock,
                legacy=True,  # a connection object we close ourselves, not a context manager
                origin=self.base if self.page_load else None,
                subprotocols=["streamlit", xsrf or NO_TOKEN],
                additional_headers=headers,
                proxy=None,
                open_timeout=timeout,
                close_timeout=2,
                ping_interval=5,
                ping_timeout=self.keepalive,
                max_size=MAX_MESSAGE,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ServerGone(f"cannot open the websocket: {exc}") from exc
        if self.page_load and self._ws.response is not None:
            self._keep_cookies(self._ws.response.headers.get_all("Set-Cookie"))
        self._reader = threading.Thread(target=self._read, name="st-client", daemon=True)
        self._reader.start()

    def _cookie_header(self) -> str | None:
        probe = urllib.request.Request(f"{self.base}/_stcore/stream")
        self.cookies.add_cookie_header(probe)
        return probe.get_header("Cookie")

    def _keep_cookies(self, set_cookies: list[str]) -> None:
        """Cookies set on the websocket handshake go into the jar, as a browser keeps them."""
        if not set_cookies:
            return
        message = http.client.HTTPMessage()
        for value in set_cookies:
            message["Set-Cookie"] = value

        class _Response:
            def info(self) -> http.client.HTTPMessage:
                return message

        self.cookies.extract_cookies(_Response(), urllib.request.Request(f"{self.base}/_stcore/stream"))  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the websocket and stop the reader (within a few seconds); safe to call twice."""
        self._stop.set()
        if self._ws is not None:
            self._ws.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        with self._cond:
            self.closed_reason = self.closed_reason or "closed by the client"
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    # -- what the tab sends -----------------------------------------------------------------------------

    def rerun(self, timeout: float | None = None) -> float:
        """The whole page again (what a widget change outside a fragment sends); seconds to its answer."""
        return self.wait_answer(self._send_rerun("rerun"), timeout)

    def click(self, label: str, timeout: float | None = None) -> float:
        """Press the button labelled `label` (its fragment only, if it is in one); seconds to the answer."""
        button = self.wait_for(lambda p: p.widget(label, ("button",)), timeout, f"a button {label!r}")
        trigger = WidgetState(id=button.widget_id, trigger_value=True)
        request = self._send_rerun(f"click {label}", extra=[trigger], fragment_id=button.fragment_id)
        return self.wait_answer(request, timeout)

    def set_value(self, label: str, value: Any, timeout: float | None = None) -> float:
        """Give the widget labelled `label` a value (as the user would) and rerun; seconds to the answer."""
        widget = self.wait_for(lambda p: p.widget(label, VALUE_FIELDS), timeout, f"a widget {label!r}")
        state = WidgetState(id=widget.widget_id)
        kind = VALUE_FIELDS[widget.kind]
        if kind in ("double_array_value", "string_array_value"):
            getattr(state, kind).data.extend(value if isinstance(value, list | tuple) else [value])
        else:
            setattr(state, kind, value)
        with self._cond:
            self._values[widget.widget_id] = state
        request = self._send_rerun(f"set {label}", fragment_id=widget.fragment_id)
        return self.wait_answer(request, timeout)

    def rerun_fragment(self, fragment_id: str, auto: bool = True, timeout: float | None = None) -> float:
        """What a `run_every` timer sends (`auto=True`), or a widget inside the fragment; seconds to its answer."""
        return self.wait_answer(self._send_rerun("fragment", fragment_id=fragment_id, auto=auto), timeout)

    def clear_cache(self) -> None:
        """What the menu's "Clear cache" sends. The server answers nothing; a later rerun shows the effect."""
        self._send(BackMsg(clear_cache=True))

    def stop_script(self) -> None:
        self._send(BackMsg(stop_script=True))

    @property
    def fragments(self) -> dict[str, float]:
        """The `run_every` fragments the server asked this tab to rerun: fragment id -> interval in seconds."""
        with self._cond:
            return {f: interval for f, (interval, _) in self._timers.items()}

    def _send_rerun(
        self,
        what: str,
        *,
        extra: Iterable[WidgetState] = (),
        fragment_id: str = "",
        auto: bool = False,
        page_name: str = "",
        page_hash: str | None = None,
    ) -> _Request:
        with self._cond:
            state = ClientState(
                query_string=self.query_string,
                page_script_hash=self.page_script_hash if page_hash is None else page_hash,
                page_name=page_name,
                fragment_id=fragment_id,
                is_auto_rerun=auto,
                context_info=ContextInfo(
                    timezone="UTC",
                    timezone_offset=0,
                    locale=self.locale,
                    url=f"{self.base}/{self.path}" + (f"?{self.query_string}" if self.query_string else ""),
                    is_embedded=False,
                    color_scheme="light",
                ),
            )
            state.widget_states.widgets.extend([*self._values.values(), *extra])
            if len(self._cache) > MAX_CACHED:  # prune only here, so every hash announced below is still kept
                for old in list(self._cache)[: len(self._cache) - MAX_CACHED]:
                    del self._cache[old]
            state.cached_message_hashes.extend(self._cache)
            request = _Request(what, fragment_id, time.monotonic())
            if what == "timer":
                self._polls["sent"] += 1
            self.requests.append(request)
            del self.requests[:-1000]  # reruns the server dropped (a timer's, during a full run) are never answered
        self._send(BackMsg(rerun_script=state))
        return request

    def _send(self, msg: BackMsg) -> None:
        if self._ws is None or self.closed:
            raise ServerGone(self.closed_reason or "not connected: call open() first")
        try:
            with self._send_lock:
                self._ws.send(msg.SerializeToString())
        except ConnectionClosed as exc:
            self._gone(f"the server closed the connection ({exc})")
            raise ServerGone(self.closed_reason) from exc

    def poll_stats(self) -> dict[str, int]:
        """The tab's polls: `run_every` timer reruns, or the poll component's HTTP requests, and the redraws.

        sent / answered / fast (answered within 1 s); redraws: fragment runs that reached the tab.
        """
        with self._cond:
            return {**self._polls, "redraws": self.fragment_redraws}

    def _count_poll(self, seconds: float) -> None:
        self._polls["answered"] += 1
        if seconds <= 1.0:
            self._polls["fast"] += 1

    # -- the lab's poll component: what its JavaScript does in a browser --------------------------------

    def _mount_component(self, proto: Any, fragment_id: str) -> None:
        """A `bidi_component` arrived: when it is the lab's poll component, (re)start its polling loop."""
        if proto.component_name != POLL_COMPONENT:
            return
        try:
            data = json.loads(proto.json) if proto.WhichOneof("data") == "json" else {}
        except ValueError:
            data = {}
        old = self._poll_target
        if old is not None and old.element_id == proto.id and old.data == data:
            return  # the same element drawn again: the browser keeps its loop (nothing re-mounts)
        first = float(data.get("first") or 0.0)
        self._poll_target = _PollTarget(proto.id, fragment_id, data, self.page_script_hash, time.monotonic() + first)
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="st-client-poll", daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set() and not self.closed:
            with self._cond:
                target = self._poll_target
            now = time.monotonic()
            if target is None or not self.follow_timers or target.due is None or target.due > now:
                wait = 0.1 if target is None or target.due is None else min(0.1, max(0.0, target.due - now))
                self._stop.wait(wait)
                continue
            try:
                self._poll_once(target)
            except ServerGone:
                return

    def _poll_once(self, target: _PollTarget) -> None:
        data = target.data
        every = max(0.1, float(data.get("every") or 1.0))
        url = str(data.get("url") or "")
        if not url:
            target.due = None  # a panel whose run is over: nothing to ask
            return
        if target.fallback:  # the route refused this browser: redraw the panel on a timer, as before
            target.due = time.monotonic() + every
            self._announce(target, f"t{time.monotonic():.3f}")
            return
        with self._cond:
            self._polls["sent"] += 1
        sent = time.monotonic()
        try:
            with self._http.open(f"{self.base}/{url.lstrip('/')}", timeout=30) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:  # refused (no cookie, not this browser's run): redraw on a timer
            target.fallback = exc.code in (403, 404)
            target.due = time.monotonic() + every
            return
        except (OSError, ValueError):  # busy or unreachable: ask again later
            target.due = time.monotonic() + every
            return
        now = time.monotonic()
        if self.on_message is not None:
            self.on_message(now)
        with self._cond:
            self._count_poll(now - sent)
        token, after = answer.get("token"), answer.get("next")
        if token != data.get("token") and (target.announced is None or now - target.announced > POLL_REDRAW_GRACE):
            target.announced = now
            self._announce(target, str(token))
        target.due = None if after is None else now + max(0.05, float(after))

    def _announce(self, target: _PollTarget, value: str) -> None:
        """The component's `setTriggerValue("news", value)`: a rerun of its fragment only."""
        trigger = WidgetState(
            id=f"$$STREAMLIT_INTERNAL_KEY_{target.element_id}__events",
            json_trigger_value=json.dumps([{"event": "news", "value": value}]),
        )
        self._send_rerun("news", extra=[trigger], fragment_id=target.fragment_id)

    # -- waiting ----------------------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        with self._cond:
            return self._snapshot()

    def wait_for(self, predicate: Callable[[Page], Any], timeout: float | None = None, what: str = "") -> Any:
        """The first truthy `predicate(page)`, checked on every change; `TimeoutError` or `ServerGone` otherwise."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while True:
                found = predicate(self._snapshot())
                if found:
                    return found
                if self.closed:
                    raise ServerGone(f"{self.closed_reason} while waiting for {what or 'the page'}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = "; ".join(self._snapshot().texts)[-600:]
                    raise TimeoutError(f"no {what or 'such page'} within {timeout or self.timeout:g} s; page: {texts}")
                self._cond.wait(min(remaining, 1.0))

    def wait_answer(self, request: _Request, timeout: float | None = None) -> float:
        """Seconds from sending `request` until the first run after it finished (its answer)."""
        self.wait_for(lambda _: request.answered is not None, timeout, f"an answer to {request.what}")
        return request.answered - request.sent  # type: ignore[operator]

    def wait_idle(self, timeout: float | None = None) -> None:
        """Until no run is going on and every request sent so far, but the timers' reruns, is answered."""

        def idle(_: Page) -> bool:
            return not self.running and all(r.what == "timer" for r in self.requests)

        self.wait_for(idle, timeout, "an idle tab")

    # -- receiving (the reader thread) ------------------------------------------------------------------

    def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            while not self._stop.is_set():
                if time.monotonic() > self._deadline:
                    self._gone("the client's lifetime is over")
                    break
                try:
                    data = ws.recv(timeout=self._until_next_timer())
                except TimeoutError:
                    self._fire_timers()
                    continue
                except ConnectionClosed as exc:
                    self._gone(f"the server closed the connection ({exc.rcvd.code if exc.rcvd else 'no close frame'})")
                    break
                if self.on_message is not None:
                    self.on_message(time.monotonic())
                if isinstance(data, bytes):
                    msg = ForwardMsg()
                    msg.ParseFromString(data)
                    with self._cond:
                        self._apply(msg)
                        self._cond.notify_all()
                self._fire_timers()
        except Exception as exc:  # noqa: BLE001 -- the reader must end the session, never die silently
            self._gone(f"the client failed: {type(exc).__name__}: {exc}")
        finally:
            ws.close()

    def _gone(self, reason: str) -> None:
        with self._cond:
            self.closed_reason = self.closed_reason or reason
            self._cond.notify_all()

    def _until_next_timer(self) -> float:
        with self._cond:
            due = [at for _, at in self._timers.values()] if self.follow_timers else []
        now = time.monotonic()
        return max(0.0, min([0.2, *(at - now for at in due)]))

    def _fire_timers(self) -> None:
        if not self.follow_timers or self.closed:
            return
        now = time.monotonic()
        with self._cond:
            due = [f for f, (_, at) in self._timers.items() if at <= now]
            for f in due:
                interval, _ = self._timers[f]
                self._timers[f] = (interval, now + interval)
        for f in due:  # the browser's setInterval: it does not wait for the previous answer
            try:
                self._send_rerun("timer", fragment_id=f, auto=True)
            except ServerGone:
                return

    def _apply(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = msg
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.unresolved_refs += 1
                return
            full = ForwardMsg()
            full.CopyFrom(cached)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, cached.WhichOneof("type")
        if kind == "new_session":
            self._new_run(msg)
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            self._finished(msg.script_finished)
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "page_config_changed" and msg.page_config_changed.title:
            self.tab_title = msg.page_config_changed.title
        elif kind == "auto_rerun":
            interval = max(0.05, msg.auto_rerun.interval)
            self._timers[msg.auto_rerun.fragment_id] = (interval, time.monotonic() + interval)
        elif kind == "stop_auto_rerun":
            for f in msg.stop_auto_rerun.fragment_ids:
                self._timers.pop(f, None)
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_script_hash = msg.navigation.page_script_hash or self.page_script_hash
        elif kind == "page_not_found":
            self.page_not_found = True

    def _new_run(self, msg: ForwardMsg) -> None:
        session = msg.new_session
        self._run_id = msg.metadata.run.script_run_id
        self._run_fragments = tuple(msg.metadata.run.fragment_ids)
        self._run_started = time.monotonic()
        self.running = True
        self.session_id = session.initialize.session_id or self.session_id
        if session.page_script_hash:
            self.page_script_hash = session.page_script_hash
        if not self._run_fragments:  # a full run: the browser drops every timer, the run sets them again
            self._timers.clear()
            self.page_not_found = False
            if self._poll_target is not None and self._poll_target.page != self.page_script_hash:
                self._poll_target = None  # another page: its panel (and poll) is gone

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        kind = delta.WhichOneof("type")
        if kind == "new_element":
            self._drop_below(path)
            self._tree[path] = _Node(
                _element(path, delta.new_element, delta.fragment_id), self._run_id, delta.fragment_id
            )
            if delta.new_element.WhichOneof("type") == "bidi_component":
                self._mount_component(delta.new_element.bidi_component, delta.fragment_id)
        elif kind == "add_block":
            old = self._tree.get(path)
            if old is not None and old.element is not None:
                self._drop_below(path)
            self._tree[path] = _Node(None, self._run_id, delta.fragment_id)

    def _drop_below(self, path: tuple[int, ...]) -> None:
        for p in [p for p in self._tree if len(p) > len(path) and p[: len(path)] == path]:
            del self._tree[p]

    def _finished(self, status: int) -> None:
        """A run ended: drop what it did not redraw (as the frontend does), answer the requests it served."""
        if status not in FINAL:
            if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN and self._run_fragments:
                self.dropped_fragment_runs += 1
            return  # interrupted by a rerun: the next run answers
        full = status != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
        stale = [
            p
            for p, node in self._tree.items()
            if node.run_id != self._run_id and (full or node.fragment_id in self._run_fragments)
        ]
        for p in stale:
            self._tree.pop(p, None)
            self._drop_below(p)
        if full:  # values of widgets no longer on the page are forgotten
            live = {n.element.widget_id for n in self._tree.values() if n.element and n.element.widget_id}
            self._values = {w: s for w, s in self._values.items() if w in live}
        self.running = False
        self.finished_runs += 1
        if not full:
            self.fragment_redraws += 1
        now = time.monotonic()
        for request in self.requests:
            # Answered by the first run that started after it was sent and covers it: a whole-page run
            # covers everything; a fragment run, the requests for its fragments. (A run the server had
            # already started when the request left is mistaken for its answer only in that instant.)
            if request.sent <= self._run_started and (
                not self._run_fragments or request.fragment_id in self._run_fragments
            ):
                request.answered = now
                self.answers.append((request.what, now - request.sent))
                if request.what == "timer":
                    self._count_poll(now - request.sent)
        self.requests = [r for r in self.requests if r.answered is None]
        del self.answers[:-10_000]

    def _snapshot(self) -> Page:
        elements = tuple(n.element for _, n in sorted(self._tree.items()) if n.element is not None)
        return Page(elements, self.tab_title, self.query_string)


def _element(path: tuple[int, ...], element: Any, fragment_id: str) -> Element:
    kind = element.WhichOneof("type") or ""
    body = getattr(element, kind, None)
    text, detail = "", ""
    if kind == "alert":
        text, detail = body.body, Alert.Format.Name(body.format).lower()
    elif kind == "heading":
        text, detail = body.body, body.tag
    elif kind in ("markdown", "text"):
        text = body.body
    elif kind == "progress":
        text = body.text
    elif kind == "exception":
        text, detail = body.message, body.type
    elif body is not None and hasattr(body, "label"):
        text = body.label
    widget_id = getattr(body, "id", "") if body is not None and hasattr(body, "label") else ""
    return Element(path, kind, text, widget_id if isinstance(widget_id, str) else "", fragment_id, detail, element)
