"""The sidebar's page menu, drawn by the lab itself: page titles from the very first paint, never file names.

Why not Streamlit's own menu: with a `pages/` folder beside the entrypoint, Streamlit 1.67 serves a server's
first script run in its legacy multipage mode, whose menu lists the files ("streamlit app", "clipping",
"hidden states", ...) until `st.navigation` has run; a class saw that menu for 2-3 s. The folder's name is
part of the product, so `client.showSidebarNavigation = false` (.streamlit/config.toml) hides Streamlit's
menu in both modes, the entrypoint routes with `st.navigation(position="hidden")`, and this menu lists the
open pages with `st.page_link`, in the sidebar's first place (a container made before anything else is drawn
there).
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

NAV_KEY = "lab_nav"  # the menu's container: its element carries the class `st-key-lab_nav` (tests find it so)


def menu_slot() -> DeltaGenerator:
    """The sidebar's first place, kept for the menu: call before anything else draws in the sidebar."""
    return st.sidebar.container(key=NAV_KEY)


def menu_ui(slot: DeltaGenerator, pages: Iterable[st.Page]) -> None:
    """One link per page a visitor may open, by its title and icon (a closed page is not passed, so not shown)."""
    with slot:
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon)
        st.divider()
