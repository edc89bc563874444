// The lab's poll component (lab_ui/poll.py mounts it; tests/st_client.py plays its part).
// One question loop per mounted panel: a redraw with new data calls this function again on the same
// element, so the previous loop is stopped first (Streamlit does not call the old cleanup then).
// A "news" announcement that brought no redraw (a lost or dropped rerun) is repeated after GRACE_MS.
// Refused (403: no identity cookie; 404: not this browser's run as the route sees it), the panel is redrawn
// every `every` seconds instead, as before the route; a busy or unreachable server is simply asked again.
