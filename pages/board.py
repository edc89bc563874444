"""Experiment board: one setting varied over a few values, every run of a class on one chart."""

from __future__ import annotations

from lab_ui import board_ui, session

PAGE = "board"  # the page's key, which its widgets' keys start with (`board_ui.PAGE`: the page draws there)
assert PAGE == board_ui.PAGE


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    board_ui.board_page()


main()
