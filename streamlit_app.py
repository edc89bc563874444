"""RNN Lyrics Lab: the entrypoint sets up the session once and routes to a page in `pages/`.

`streamlit run streamlit_app.py` finds `app` below and serves it (Streamlit's ASGI app with the lab's own
middleware, see `lab_ui.web`, and its poll route, see `lab_ui.poll`); the app then runs this same file as its
script, where `__name__` is "__main__".
"""

import streamlit as st


def main() -> None:
    """The script of every page view, in a script turn (`lab_ui.turns`: a class's clicks must not starve the
    server's event loop): page config, the session set up once, the navigation, the chosen page."""
    from lab_ui import turns

    with turns.turn():
        _page_view()


def _page_view() -> None:
    from lab_ui import class_ui, identity, session
    from lab_ui.i18n import PAGE_TITLES, t
    from lab_ui.icon import app_icon

    st.set_page_config(page_title=t("common.tab_title"), page_icon=app_icon(), layout="wide")
    session.init()

    # Each page's key is the `PAGE` its file uses for its widget keys; `st.session_state["page"]` names the page.
    PAGES = {  # the page table (tests read it by this name)
        "train": st.Page(
            "pages/train.py", title=t(PAGE_TITLES["train"]), icon=":material/show_chart:", default=True
        ),  # the default page is served at /
        "sampling": st.Page(
            "pages/sampling.py", title=t(PAGE_TITLES["sampling"]), icon=":material/shuffle:", url_path="sampling"
        ),
        "hidden": st.Page(
            "pages/hidden_states.py",
            title=t(PAGE_TITLES["hidden"]),
            icon=":material/grid_on:",
            url_path="hidden_states",
        ),
        "clipping": st.Page(
            "pages/clipping.py", title=t(PAGE_TITLES["clipping"]), icon=":material/content_cut:", url_path="clipping"
        ),
        "generalise": st.Page(
            "pages/generalise.py", title=t(PAGE_TITLES["generalise"]), icon=":material/school:", url_path="generalise"
        ),
        "generate": st.Page(
            "pages/generate.py", title=t(PAGE_TITLES["generate"]), icon=":material/edit_note:", url_path="generate"
        ),
        "gradients": st.Page(
            "pages/gradients.py", title=t(PAGE_TITLES["gradients"]), icon=":material/timeline:", url_path="gradients"
        ),
        "lessons": st.Page(
            "pages/lessons.py", title=t(PAGE_TITLES["lessons"]), icon=":material/menu_book:", url_path="lessons"
        ),
        "board": st.Page(
            "pages/board.py", title=t(PAGE_TITLES["board"]), icon=":material/leaderboard:", url_path="board"
        ),
        "my_runs": st.Page(
            "pages/my_runs.py", title=t(PAGE_TITLES["my_runs"]), icon=":material/history:", url_path="my_runs"
        ),
        "teacher": st.Page(
            "pages/teacher.py", title=t(PAGE_TITLES["teacher"]), icon=":material/co_present:", url_path="teacher"
        ),
    }
    # A lesson lock closes pages to its class's students (and the Teacher page is not a student's): a closed page
    # is replaced by a stand-in that is not in the menu and never runs the page (`class_ui.closed_page`).
    shown = {key: candidate for key, candidate in PAGES.items() if identity.page_visible(key)}
    first = next(iter(shown.values()), PAGES["my_runs"])
    routed = {key: shown.get(key) or class_ui.closed_page(key, candidate, first) for key, candidate in PAGES.items()}
    # The menu is Streamlit's own, in the sidebar: page titles, drawn by the frontend's main code with no element
    # to load first (the lab's st.page_link menu waited up to seconds for that code under load), every page shown
    # (expanded), a click switches page in the session. Never file names: see `_leave_legacy_pages_mode` below.
    page = st.navigation(list(routed.values()), position="sidebar", expanded=True)
    st.session_state["page"] = next(key for key, candidate in routed.items() if candidate is page)
    with session.routed_by_entrypoint():
        page.run()


if __name__ == "__main__":
    main()
else:  # imported by `streamlit run` (or an ASGI server) to serve the app
    import threading

    from streamlit.starlette import App

    from lab_ui import poll, web
    from lm_core.classroom import teacher

    def _leave_legacy_pages_mode() -> None:
        """Serve every first request through this entrypoint: never Streamlit's legacy mode of the `pages/` folder.

        Streamlit 1.67 starts a server in its legacy multipage mode when a `pages/` folder sits beside the
        entrypoint (`PagesManager.uses_pages_directory`, set from the folder's existence when the first session
        starts): that first run shows a menu of file names ("streamlit app", "hidden states") and serves a deep
        link by its file alone, until some run calls `st.navigation`, which clears the flag for the whole server
        (streamlit/commands/navigation.py, `PagesManager.uses_pages_directory = False`). The entrypoint always
        calls it, so clearing the flag before the first session does what the first run would do, only earlier.
        """
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False

    _leave_legacy_pages_mode()

    teacher.announce()  # without RNN_LAB_TEACHER_KEY: the generated key goes to the server's log, now

    from lm_core.serve import warmup

    def _warm_models() -> None:
        """Imported here, on its own thread: the server answers its health check before torch is imported."""
        from lab_ui import model_source

        def before_search() -> None:
            warmup.warm_up_torch_once()
            model_source.give_way()

        try:
            model_source.warm_quietly(before_search)
        finally:
            warmup.warm_up_torch_once()  # done already, unless the model warm-up failed before it

    # The shipped model the model pages open with, loaded and analysed before the first student asks for it;
    # torch's first-use costs (a Train click's) after the model pages' needs, never during a first page view.
    warmup.defer_to_server_warm_up()
    threading.Thread(target=_warm_models, name="model-warm-up", daemon=True).start()
    app = App(__file__, middleware=web.middleware(), routes=poll.routes())
