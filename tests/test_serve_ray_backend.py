"""Training on a Ray cluster: same events and controls as locally, several servers, a lost node is resumable.

The cluster tests start a real two-node Ray cluster on this machine (a head
and a second node, one CPU each; a third node joins to be killed). Ray comes
from requirements-ray.txt: tests/run.sh installs it, and in CI (CI set) this
module installs it itself if it is missing, and fails rather than skip.
Whatever happens, the cluster is shut down (module fixture, try/finally).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import TIMEOUT, check_released_weights, free_port, seconds_until, thread_curve

from lm_core.corpus import Corpus
from lm_core.errors import localized
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore, StoreError
from lm_core.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
CONTROL_BOUND = 5.0  # seconds; the target is 0.5 s (lm_core.bench.ray_vs_local prints it); survives a starved box
CONFIG = {"model": "scratch-gru", "hidden": 32, "num_steps": 8, "batch_size": 4, "lr": 1.0, "clip": 1.0, "seed": 5}


def _trainer(corpus: Corpus, epochs: int) -> Trainer:
    return Trainer(corpus, TrainConfig(**CONFIG, epochs=epochs))


# -- without a cluster ---------------------------------------------------------------------------------------


def _python(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_without_the_variable_ray_is_never_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RNN_LAB_RAY_ADDRESS"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, lm_core.serve.manager, lab_ui.session\n"
            "from lm_core.serve.manager import JobManager\n"
            "JobManager(backend='process').shutdown()\n"
            "print('ray' in sys.modules)",
        ],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_missing_ray_falls_back_with_a_message_in_both_languages() -> None:
    result = _python(
        """
        import sys, json
        sys.modules["ray"] = None  # as if Ray were not installed
        from lab_ui.session import choose_ray
        from lm_core.errors import localized
        error, cpus = choose_ray()
        print(json.dumps([str(error), localized(error, "zh"), cpus]))
        """,
        env={"RNN_LAB_RAY_ADDRESS": "auto"},
    )
    assert result.returncode == 0, result.stderr
    en, zh, cpus = json.loads(result.stdout.strip().splitlines()[-1])
    assert cpus == 0 and "Ray is not installed" in en and "requirements-ray.txt" in en and "没有安装 Ray" in zh
    assert "Traceback" not in result.stderr


def test_an_unreachable_cluster_falls_back_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    _ray()
    from lab_ui.session import choose_ray

    monkeypatch.setenv("RNN_LAB_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    start = time.monotonic()
    error, cpus = choose_ray()
    assert cpus == 0 and error is not None
    assert "does not answer" in str(error) and "没有响应" in localized(error, "zh")
    assert time.monotonic() - start < 10
    monkeypatch.setenv("RNN_LAB_RAY_ADDRESS", "not an address")
    error, cpus = choose_ray()
    assert cpus == 0 and "auto, host:port or ray://host:port" in str(error)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_sidebar_says_runs_train_locally_when_the_cluster_is_unreachable(
    lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import apptest_helpers as helpers

    _ray()
    monkeypatch.setenv("RNN_LAB_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    with helpers._clean_runtime():
        at = helpers.AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=helpers.TIMEOUT)
        at.query_params["lang"] = lang
        at.switch_page("pages/my_runs.py").run()
        assert not at.exception
        warnings = " ".join(w.value for w in at.sidebar.warning)
        if lang == "en":
            assert "the Ray cluster cannot be used" in warnings and "Runs train on this machine" in warnings
        else:
            assert "无法使用 Ray 集群" in warnings and "训练改在本机进行" in warnings and "没有响应" in warnings
        mgr = helpers.session.manager()
        assert mgr.backend == "thread" and mgr.store is not None  # the local backend asked for, store kept to itself


def test_ray_servers_share_the_store_but_never_with_a_local_server(tmp_path: Path) -> None:
    a = RunStore(tmp_path, shared=True)
    b = RunStore(tmp_path, shared=True)  # a second Ray server on the same folder
    with pytest.raises(StoreError):
        RunStore(tmp_path, exclusive=True)
    a.close()
    b.close()
    local = RunStore(tmp_path, exclusive=True)
    with pytest.raises(StoreError):
        RunStore(tmp_path, shared=True)
    local.close()


# -- on a two-node cluster -----------------------------------------------------------------------------------


def _ray() -> Any:
    """Ray from requirements-ray.txt; in CI install it if missing (never skip there)."""
    try:
        import ray
    except ImportError:
        if not os.environ.get("CI"):
            pytest.skip("Ray is not installed: pip install -r requirements-ray.txt (CI installs it)")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REPO / "requirements-ray.txt")],
            check=True,
            timeout=900,
        )
        import ray
    return ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head and a second node on this machine, one CPU each; this process joins it through the backend."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    _ray()
    from ray.cluster_utils import Cluster

    from lm_core.serve import ray_cluster

    # A node that dies is noticed in about a second (the default waits much longer).
    system = {"health_check_period_ms": 500, "health_check_failure_threshold": 2, "health_check_timeout_ms": 500}
    made = None
    try:
        made = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": system},
        )
        made.add_node(num_cpus=1)
        made.wait_for_nodes()
        ray_cluster.connect(made.address)
        yield made
    finally:
        try:
            ray_cluster.disconnect()
        finally:
            if made is not None:
                made.shutdown()


@pytest.fixture()
def ray_manager(cluster: Any, tmp_path: Path) -> Iterator[JobManager]:
    mgr = JobManager(store=RunStore(tmp_path, shared=True), backend="ray", max_running=8)
    try:
        yield mgr
    finally:
        mgr.shutdown()


@pytest.mark.ray
def test_two_runs_on_two_nodes_with_controls_and_the_local_curve(ray_manager: JobManager, tiny_corpus: Corpus) -> None:
    mgr = ray_manager
    epochs = 4
    a = mgr.submit("alice", [_trainer(tiny_corpus, epochs)], ["A"], prefixes=("春风",), sample_every=1)
    b = mgr.submit("alice", [_trainer(tiny_corpus, 100_000)], ["B"])
    seconds_until(lambda: mgr.view(b).epoch >= 1 and b.status == "running")

    b.pause()
    assert seconds_until(lambda: b.status == "paused") < CONTROL_BOUND  # the actor itself reported that it blocked
    epoch = mgr.view(b).epoch
    b.step_epoch()
    seconds_until(lambda: mgr.view(b).epoch == epoch + 1 and b.status == "paused")
    # The job's status changes first, the store's right after it (outside the job's lock): wait for that too.
    seconds_until(lambda: mgr.store.run(f"{b.id}-0", "alice").status == "paused")
    b.resume()
    seconds_until(lambda: b.status == "running")

    a.thread.join(TIMEOUT)
    view = mgr.view(a)
    assert view.status == "finished" and view.epoch == epochs
    curve = [h["perplexity"] for h in view.runs[0].history]
    assert curve == pytest.approx(thread_curve(_trainer(tiny_corpus, epochs)), rel=0.005)
    assert set(view.runs[0].samples) == set(range(1, epochs + 1))
    assert len(view.runs[0].step_norms) == sum(h["steps"] for h in view.runs[0].history)
    assert len(a.checkpoint(0).history) == epochs
    record = mgr.store.run(f"{a.id}-0", "alice")
    assert record.status == "finished" and record.epoch == epochs and mgr.store.checkpoint_path(record.id).is_file()
    assert len(a.worker.event_lags) == epochs and max(a.worker.event_lags) < CONTROL_BOUND

    t0 = time.monotonic()
    b.stop()
    b.thread.join(TIMEOUT)
    assert time.monotonic() - t0 < CONTROL_BOUND
    assert mgr.view(b).status == "stopped" and mgr.store.run(f"{b.id}-0", "alice").status == "stopped"

    nodes = {n["NodeID"] for n in _ray().nodes() if n["Alive"]}
    assert a.worker.node_id in nodes and b.worker.node_id in nodes
    assert a.worker.node_id != b.worker.node_id  # one CPU per node and both trained at once: both nodes were used


@pytest.mark.ray
def test_a_released_job_shows_the_weights_its_actor_trained(ray_manager: JobManager, tiny_corpus: Corpus) -> None:
    check_released_weights(ray_manager, _trainer(tiny_corpus, 2), "春风", elsewhere=True)


_SECOND_SERVER = """
import json, sys, time
from lm_core.corpus import Corpus
from lm_core.serve import ray_cluster
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

address, folder, job_id, config = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ray_cluster.connect(address)
mgr = JobManager(store=RunStore(folder, shared=True), backend="ray", max_running=8)
out = {"interrupted_at_start": mgr.interrupted}
out["bob_may_not"] = mgr.control_remote(job_id, "bob", "stop")
t0 = time.monotonic()
out["paused"] = mgr.control_remote(job_id, "alice", "pause")
out["pause_seconds"] = time.monotonic() - t0
out["resume_elsewhere"] = mgr.resume_stored(job_id, "alice") is None
corpus = Corpus.from_text(mgr.store.corpus_text(mgr.store.runs("alice")[0].corpus_hash), "tiny", max_chars=None)
mine = mgr.submit("alice", [Trainer(corpus, TrainConfig(**config, epochs=100000))], ["C"])
while mgr.view(mine).epoch < 1:
    assert time.monotonic() - t0 < 120
    time.sleep(0.01)
out["job"] = mine.id
print(json.dumps(out), flush=True)
mine.thread.join(120)  # the first server stops it
out = {"status": mgr.view(mine).status}
print(json.dumps(out), flush=True)
mgr.shutdown()
"""


@pytest.mark.ray
def test_a_second_server_sees_controls_and_starts_runs_on_the_same_cluster_and_store(
    cluster: Any, ray_manager: JobManager, tiny_corpus: Corpus, tmp_path: Path
) -> None:
    mgr = ray_manager
    job = mgr.submit("alice", [_trainer(tiny_corpus, 100_000)], ["B"])
    seconds_until(lambda: mgr.view(job).epoch >= 1 and job.status == "running")
    server = subprocess.Popen(
        [sys.executable, "-c", _SECOND_SERVER, cluster.address, str(mgr.store.folder), job.id, json.dumps(CONFIG)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(server.stdout.readline())
        assert f"{job.id}-0" not in first["interrupted_at_start"]  # a second server leaves the first's runs alone
        assert first["bob_may_not"] is False
        assert first["paused"] is True and first["pause_seconds"] < CONTROL_BOUND
        assert first["resume_elsewhere"] is True  # a run live on another server is not started twice
        seconds_until(lambda: job.status == "paused")  # controlled through the other server, reported here
        seconds_until(lambda: mgr.store.run(f"{job.id}-0", "alice").status == "paused")  # then written to the store
        # The other server's run is listed here (same store) and this server stops it through Ray.
        other = first["job"]
        assert any(r.job_id == other and r.live for r in mgr.store.runs("alice"))
        assert mgr.store.history(f"{other}-0")
        assert mgr.control_remote(other, "alice", "stop") is True
        assert json.loads(server.stdout.readline())["status"] == "stopped"
        assert server.wait(60) == 0
        assert mgr.store.run(f"{other}-0", "alice").status == "stopped"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        job.stop()
        job.thread.join(TIMEOUT)


@pytest.mark.ray
def test_a_killed_node_interrupts_its_run_which_resumes_from_the_store(
    cluster: Any, ray_manager: JobManager, tiny_corpus: Corpus
) -> None:
    mgr = ray_manager
    victim = cluster.add_node(num_cpus=1)  # a third node, joined after this process, so it may be killed
    cluster.wait_for_nodes()
    jobs = [mgr.submit("alice", [_trainer(tiny_corpus, 100_000)], [f"R{i}"]) for i in range(3)]
    try:
        seconds_until(lambda: all(mgr.view(j).epoch >= 2 for j in jobs))
        on_victim = [j for j in jobs if j.worker.node_id == victim.node_id]
        assert len(on_victim) == 1  # three runs, three one-CPU nodes: one run on each
        lost = on_victim[0]
        others = [j for j in jobs if j is not lost]
        saved = mgr.store.run(f"{lost.id}-0", "alice").epoch
        cluster.remove_node(victim, allow_graceful=False)
        lost.thread.join(TIMEOUT)
        view = mgr.view(lost)
        assert view.status == "interrupted", view.message
        assert view.message.startswith(f"Interrupted at epoch {view.epoch}") and "My runs" in view.message
        record = mgr.store.run(f"{lost.id}-0", "alice")
        assert record.status == "interrupted" and record.epoch >= saved  # nothing already saved is lost
        assert mgr.store.checkpoint_path(record.id).is_file()
        for j in others:  # the runs on the other nodes go on
            epoch = mgr.view(j).epoch
            seconds_until(lambda j=j, epoch=epoch: mgr.view(j).epoch > epoch)
            assert j.status == "running"
        for j in others:
            j.stop()
            j.thread.join(TIMEOUT)
        again = mgr.resume_stored(lost.id, "alice")
        assert again is not None and again.id == lost.id
        seconds_until(lambda: mgr.view(again).epoch >= record.epoch + 1)
        assert again.worker.node_id in {n["NodeID"] for n in _ray().nodes() if n["Alive"]}
        again.stop()
        again.thread.join(TIMEOUT)
        resumed = [h["perplexity"] for h in mgr.store.history(f"{lost.id}-0")]
        assert len(resumed) > record.epoch
        assert resumed == pytest.approx(thread_curve(_trainer(tiny_corpus, len(resumed))), rel=0.005)
    finally:
        for j in jobs:
            j.stop()


@pytest.mark.ray
def test_my_runs_on_another_server_pauses_and_stops_the_run(
    cluster: Any, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page itself: this process's app is the second server (same cluster, same store) of a run it did not start."""
    import apptest_helpers_models as helpers

    from lm_core.serve.store import data_dir

    first = JobManager(store=RunStore(data_dir(), shared=True), backend="ray", max_running=8)
    job = first.submit("alice", [_trainer(tiny_corpus, 100_000)], ["far"], kind="train")
    monkeypatch.setenv("RNN_LAB_RAY_ADDRESS", cluster.address)
    helpers.st.cache_resource.clear()
    try:
        seconds_until(lambda: first.view(job).epoch >= 1 and job.status == "running")

        def as_alice(at: Any) -> None:
            at.session_state["owner"] = "alice"

        opened = time.time()
        at = helpers.open_page("my_runs", prepare=as_alice)
        assert helpers.session.manager().backend == "ray"
        # Watched through this server counts as watched for the first one (it would reap an unwatched run).
        seconds_until(lambda: job.last_seen >= opened)
        assert "another web server on the same Ray cluster" in helpers.texts(at)
        assert not [b for b in at.button if b.key == "my_runs:resume"]  # not resumable twice
        at.button(key="my_runs:remote:pause").click().run()
        helpers.assert_ok(at)
        seconds_until(lambda: job.status == "paused")
        at.button(key="my_runs:remote:stop").click().run()
        job.thread.join(TIMEOUT)
        assert first.view(job).status == "stopped"
        at.run()  # the next poll of the page (or the Refresh button)
        helpers.assert_ok(at)
        assert "another web server" not in helpers.texts(at)  # stopped: the usual controls again
        assert [b for b in at.button if b.key == "my_runs:resume"]
    finally:
        job.stop()
        job.thread.join(TIMEOUT)
        helpers.session.manager().shutdown()
        helpers.st.cache_resource.clear()
        first.shutdown()
