// The lab's poll component (lab_ui/poll.py mounts it; tests/st_client.py plays its part).
// One question loop per mounted panel: a redraw with new data calls this function again on the same
// element, so the previous loop is stopped first (Streamlit does not call the old cleanup then).
// A "news" announcement that brought no redraw (a lost or dropped rerun) is repeated after GRACE_MS.
// Refused (403: no identity cookie; 404: not this browser's run as the route sees it), the panel is redrawn
// every `every` seconds instead, as before the route; a busy or unreachable server is simply asked again.
const GRACE_MS = 5000;
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  if (parentElement.__rnnlabPollStop) parentElement.__rnnlabPollStop();
  let timer = null, stopped = false, announced = 0;
  const stop = () => { stopped = true; clearTimeout(timer); };
  parentElement.__rnnlabPollStop = stop;
  const later = (s) => { if (!stopped) timer = setTimeout(ask, Math.max(50, s * 1000)); };
  const news = (value) => setTriggerValue("news", value);
  async function ask() {
    if (stopped) return;
    let reply = null, refused = false;
    try {
      const r = await fetch(data.url, { credentials: "same-origin", cache: "no-store" });
      if (r.ok) reply = await r.json(); else refused = r.status === 403 || r.status === 404;
    } catch (e) { reply = null; }
    if (stopped) return;
    if (reply === null) {  // refused: redraw on a timer instead; unreachable or busy: ask again later
      if (refused) news("t" + Date.now());
      later(data.every);
      return;
    }
    if (reply.token !== data.token && Date.now() - announced > GRACE_MS) {
      announced = Date.now();
      news(reply.token);
    }
    if (reply.next === null || reply.next === undefined) stop(); else later(reply.next);
  }
  if (data.url) later(data.first);
  return stop;
}
