"""Streamlit building blocks shared by the pages: what two pages need lives here, once.

Everything that trains, samples or generates lives in `lm_core`; this package
only draws it and keeps per-browser state. A page keeps its own words, its
layout and the figures only it shows.
"""
