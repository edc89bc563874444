"""Placeholder while the page is being written."""

import streamlit as st

from lab_ui import session

session.init()
st.title("sampling")
