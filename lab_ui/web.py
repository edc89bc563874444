"""The lab's HTTP layer around Streamlit: its own identity cookie, and visitor messages the server refuses.

Why a layer: Streamlit's own cookie (`_streamlit_xsrf`) is readable by JavaScript and is Streamlit's, not the
lab's, so it cannot be a lasting credential; and any visitor's websocket may send developer messages
(`clear_cache` empties every `st.cache_*` of the whole server). `streamlit run streamlit_app.py` serves the
entrypoint through `App` (Streamlit's public ASGI app, `st.App`) with the two middlewares below:

- `IdentityCookie` gives every browser that has none a random token in an HttpOnly, SameSite=Lax cookie that
  lasts a year. Pages read it from `st.context.cookies` (the websocket handshake carries it), so a browser's runs
  survive a browser restart while no script on any page can read the token.
- `RefuseDeveloperMessages` drops the websocket messages a visitor has no business sending (clear cache, run
  on save, the debug ones) before Streamlit sees them; the toolbar hides their buttons too
  (`client.toolbarMode = "viewer"` in .streamlit/config.toml).

Nothing here imports the pages or the engine: the script is still `streamlit_app.py`, run by Streamlit.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "rnnlab_id"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers accept (400 days)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
# Developer messages: clearing every cache of the server, re-running on file changes, the debug hooks.
REFUSED_MESSAGES = frozenset({"clear_cache", "set_run_on_save", "debug_disconnect_websocket", "debug_shutdown_runtime"})
log = logging.getLogger(__name__)


def valid_token(value: object) -> bool:
    """True for a token this layer could have issued (anything else is ignored, never trusted)."""
    return isinstance(value, str) and TOKEN_PATTERN.fullmatch(value) is not None


def owner_of(token: str) -> str:
    """The owner id of the browser holding identity `token` (a hash: the token itself is never stored).

    The pages (`session.owner_id`, from the websocket's cookie) and the lab's HTTP routes (from the request's)
    derive it here, so both name the same browser the same way.
    """
    return hashlib.sha256(f"rnnlab-owner:{token}".encode()).hexdigest()[:16]


def request_cookie(headers: Sequence[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie `name` in raw ASGI request headers (None when absent; a malformed pair is skipped)."""
    for key, value in headers:
        if key.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            cookie_name, sep, cookie_value = pair.strip().partition("=")
            if sep and cookie_name == name:
                return cookie_value.strip().strip('"')
    return None


def identity_cookie_header(token: str, secure: bool) -> bytes:
    """The Set-Cookie value for `token`: HttpOnly (no script reads it), Lax (sent on links into the lab)."""
    parts = [f"{COOKIE}={token}", "Path=/", f"Max-Age={COOKIE_MAX_AGE}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


class IdentityCookie:
    """Issue the lab's identity cookie on any HTTP response to a browser that sent no valid one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or valid_token(request_cookie(scope.get("headers", []), COOKIE)):
            await self.app(scope, receive, send)
            return
        header = identity_cookie_header(secrets.token_urlsafe(32), secure=scope.get("scheme") == "https")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", header)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def back_message_type(data: bytes) -> str | None:
    """The kind of a Streamlit BackMsg frame ("rerun_script", "clear_cache", ...), None when it does not parse."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    try:
        msg.ParseFromString(data)
    except Exception:  # noqa: BLE001 -- Streamlit refuses a bad frame itself; this layer only filters good ones
        return None
    return msg.WhichOneof("type")


class RefuseDeveloperMessages:
    """Drop `REFUSED_MESSAGES` from every websocket before Streamlit handles them (they act server-wide)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def filtered() -> Message:
            while True:
                message = await receive()
                data = message.get("bytes") if message["type"] == "websocket.receive" else None
                kind = back_message_type(data) if data else None
                if kind not in REFUSED_MESSAGES:
                    return message
                log.warning("Refused a %s message from a visitor", kind)

        await self.app(scope, filtered, send)


def middleware() -> list[Middleware]:
    """Outermost first: the cookie on page loads, then the websocket filter."""
    return [Middleware(IdentityCookie), Middleware(RefuseDeveloperMessages)]


def asgi_app(script: str | Path, routes: Sequence[BaseRoute] = ()) -> Any:
    """Streamlit's ASGI app for `script` with the lab's middleware (and any extra HTTP routes)."""
    from streamlit.starlette import App

    return App(script, middleware=middleware(), routes=list(routes))
