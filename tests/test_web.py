"""`lab_ui.web`: the lab's identity cookie and the developer messages it refuses, as ASGI and on a real server."""

from __future__ import annotations

import asyncio
import tempfile
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from testkit import REPO, streamlit_server

from lab_ui import web


def _run(middleware: type, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> tuple[list, list]:
    """Drive `middleware` around a fake app: what the app received, and what it sent out through the middleware."""
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            while True:
                message = await receive()
                received.append(message)
                if message["type"] == "websocket.disconnect":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"ok"})

    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(app)(scope, receive, send))
    return received, sent


def _set_cookies(sent: list[dict[str, Any]]) -> list[str]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return [value.decode("latin-1") for key, value in start["headers"] if key == b"set-cookie"]


def _http(cookie: str | None = None, scheme: str = "http") -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")] + ([(b"cookie", cookie.encode())] if cookie else [])
    return {"type": "http", "scheme": scheme, "method": "GET", "path": "/", "headers": headers}


def test_a_browser_without_the_cookie_gets_a_lasting_httponly_one() -> None:
    _, sent = _run(web.IdentityCookie, _http(), [])
    [cookie] = _set_cookies(sent)
    name, _, rest = cookie.partition("=")
    token = rest.split(";")[0]
    assert name == web.COOKIE and web.valid_token(token)
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert {"HttpOnly", "SameSite", "Path", "Max-Age"} <= attributes and "Secure" not in attributes
    assert f"Max-Age={web.COOKIE_MAX_AGE}" in cookie and "SameSite=Lax" in cookie
    _, again = _run(web.IdentityCookie, _http(), [])
    assert _set_cookies(again)[0] != cookie  # a random token each time it is issued


def test_https_makes_the_cookie_secure() -> None:
    _, sent = _run(web.IdentityCookie, _http(scheme="https"), [])
    assert "Secure" in _set_cookies(sent)[0]


def test_a_valid_cookie_is_kept_and_an_invalid_one_replaced() -> None:
    token = "x" * 43
    _, sent = _run(web.IdentityCookie, _http(f"other=1; {web.COOKIE}={token}"), [])
    assert _set_cookies(sent) == []
    for bad in ("short", "x" * 42 + "!", ""):
        _, sent = _run(web.IdentityCookie, _http(f"{web.COOKIE}={bad}"), [])
        assert len(_set_cookies(sent)) == 1, bad


def _frame(kind: str) -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    if kind == "rerun_script":
        msg.rerun_script.query_string = "lang=en"
    else:
        setattr(msg, kind, True)
    return msg.SerializeToString()


def test_developer_messages_never_reach_streamlit() -> None:
    kinds = ["rerun_script", "clear_cache", "set_run_on_save", "rerun_script", "debug_shutdown_runtime"]
    incoming = [{"type": "websocket.receive", "bytes": _frame(k)} for k in kinds]
    incoming += [{"type": "websocket.receive", "bytes": b"\xff\x00 not a BackMsg"}, {"type": "websocket.disconnect"}]
    received, _ = _run(web.RefuseDeveloperMessages, {"type": "websocket", "headers": []}, incoming)
    passed = [web.back_message_type(m["bytes"]) for m in received if m["type"] == "websocket.receive"]
    assert passed == ["rerun_script", "rerun_script", None]  # a frame that does not parse is Streamlit's to refuse
    assert received[-1]["type"] == "websocket.disconnect"


def test_the_toolbar_hides_developer_options() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["toolbarMode"] == "viewer"


@pytest.mark.slow
def test_the_real_server_issues_the_cookie_once(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log, streamlit_server(tempfile.mkdtemp(prefix="lab-web-"), log) as server:
        first = urllib.request.urlopen(f"{server.url}/", timeout=30)
        cookies = first.headers.get_all("set-cookie") or []
        [cookie] = [c for c in cookies if c.startswith(f"{web.COOKIE}=")]
        assert "HttpOnly" in cookie
        token = cookie.split(";")[0].split("=", 1)[1]
        request = urllib.request.Request(f"{server.url}/", headers={"Cookie": f"{web.COOKIE}={token}"})
        again = urllib.request.urlopen(request, timeout=30)
        assert not [c for c in again.headers.get_all("set-cookie") or [] if c.startswith(f"{web.COOKIE}=")]
    assert "Traceback" not in log_path.read_text()
