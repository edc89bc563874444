"""Streamlit building blocks shared by the pages (the pages themselves stay thin).

Everything that trains, samples or generates lives in `lm_core`; this package
only draws it and keeps per-browser state.
"""
