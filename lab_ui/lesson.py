"""A shareable link to the current page's settings (a "lesson").

Every setting already lives in the URL; the shared link is that URL without
the job id, so whoever opens it gets the same settings and seed but their own
run, never the teacher's.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from .i18n import t


def lesson_url(base_url: str, params: dict[str, str]) -> str:
    """`base_url` with `params` as its query, minus any job id."""
    parts = urlsplit(base_url)
    query = urlencode({k: v for k, v in params.items() if k != "job"})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def lesson_link_ui() -> None:
    try:
        base = st.context.url or ""
    except Exception:  # noqa: BLE001 -- no request context (AppTest)
        base = ""
    if not isinstance(base, str):
        base = ""
    with st.expander(t("lesson.share")):
        st.caption(t("lesson.share_help"))
        st.code(lesson_url(base, st.query_params.to_dict()), language=None)
