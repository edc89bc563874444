"""A board's "Run all values" with RNN_LAB_RAY_ADDRESS on the two-node test cluster: the runs spread over both nodes.

The cluster is tests/test_serve_ray_backend.py's (a head and a second node on this machine, one CPU each), so two of
the sweep's runs train at once only on two different machines, and the board names each run's node.
"""

from __future__ import annotations

from typing import Any

import pytest
from apptest_helpers import app_page, plotly_specs
from test_serve_ray_backend import _ray, cluster  # noqa: F401 -- the two-node cluster fixture, shut down after the module
from testkit import wait_until

from lab_ui import board_ui, session
from lm_core.boards import new_board
from lm_core.serve.ray_backend import RayWorker
from lm_core.training import TrainConfig

pytestmark = pytest.mark.ray

RUN = TrainConfig(model="gru", hidden=16, num_steps=10, batch_size=8, lr=0.01, optimizer="adam", epochs=6, seed=2)


def test_run_all_values_on_the_ray_cluster_puts_runs_on_both_nodes(
    cluster: Any,  # noqa: F811 -- the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RNN_LAB_RAY_ADDRESS", cluster.address)
    with app_page("pages/board.py", lang="en") as at:
        mgr = session.manager()
        assert mgr.backend == "ray" and mgr.ray_cpus == 2
        owner = at.session_state["owner"]
        board = new_board(
            owner, "hidden", (8, 16, 24, 32), RUN, {"source": "songci", "subset": "xin", "max_chars": 3000}
        )
        board_ui.boards().store.create(board)
        at.query_params["board"] = board.id
        at.run()
        at.button(key="board:run_all").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        runs = board_ui.boards().snapshot(board).runs
        jobs = [mgr.get(r.job_id, owner) for r in runs]
        assert len(jobs) == 4 and all(j is not None for j in jobs)
        assert wait_until(lambda: all(j.done for j in jobs), 300)
        assert all(isinstance(j.worker, RayWorker) for j in jobs)  # set once each run's actor started on the cluster
        nodes = {j.worker.node_id for j in jobs}
        alive = {n["NodeID"] for n in _ray().nodes() if n["Alive"]}
        assert len(nodes) == 2 and nodes <= alive  # the sweep used both machines
        assert all(j.status == "finished" for j in jobs)

        board_ui.boards().invalidate(board.id)
        at.run()
        table = at.dataframe[-1].value
        assert set(table["Ray node"]) == {n[:8] for n in nodes}  # the board says where each run trained
        (ppl,) = [s for s in plotly_specs(at) if "Best perplexity" in s["layout"]["title"]["text"]]
        assert sum(len(tr["x"]) for tr in ppl["data"] if tr.get("meta") == "finished") == 4
