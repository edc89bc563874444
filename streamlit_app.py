"""RNN Lyrics Lab: the entrypoint only builds the navigation over `pages/`."""

import streamlit as st

from lab_ui.i18n import t
from lab_ui.icon import app_icon

st.set_page_config(page_title="RNN Lyrics Lab", page_icon=app_icon(), layout="wide")

PAGES = [
    st.Page(
        "pages/train.py", title=t("page_train"), icon=":material/show_chart:", default=True
    ),  # the default page is served at /
    st.Page("pages/sampling.py", title=t("page_sampling"), icon=":material/shuffle:", url_path="sampling"),
    st.Page("pages/hidden_states.py", title=t("page_hidden"), icon=":material/grid_on:", url_path="hidden_states"),
    st.Page("pages/clipping.py", title=t("page_clipping"), icon=":material/content_cut:", url_path="clipping"),
    st.Page("pages/generalise.py", title=t("page_generalise"), icon=":material/school:", url_path="generalise"),
    st.Page("pages/generate.py", title=t("page_generate"), icon=":material/edit_note:", url_path="generate"),
    st.Page("pages/gradients.py", title=t("page_gradients"), icon=":material/timeline:", url_path="gradients"),
    st.Page("pages/my_runs.py", title=t("page_my_runs"), icon=":material/history:", url_path="my_runs"),
]

st.navigation(PAGES).run()
