"""Every chaos experiment in its shortest form, against the real local HA stack.

Each test runs one experiment the way ``drill chaos <experiment> --quick`` does (load,
watchers, observer, fault, recovery, drain, checker, report) and then asserts what the design
promises, with the seed's margins: the run passed, nothing was lost or duplicated, and the
experiment's figure is inside its criterion's target. ``worker-term`` goes through the command line
with ``--attach``, the way an operator drives a stack started by ``drill up --topology ha``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from chaos.journal import Journal
from chaos.model import Experiment, action
from chaos.progress import Progress
from chaos.runner import run_experiment
from chaos.session import ChaosSession, schedule
from chaos.target import OwnedTarget
from lab.rundir import RunInfo, read_measurements, write_run_info
from lab.stack.binaries import find_console_script
from lab.stack.ha import HaStack
from reports.render import render_run

pytestmark = pytest.mark.drill


async def drill(target: OwnedTarget, tmp_path: Path, experiment: str) -> tuple[Journal, Path, int]:
    started = datetime.now(UTC)
    run_dir = tmp_path / "run"
    (run_dir / "charts").mkdir(parents=True)
    info = RunInfo(run_id=f"test-{experiment}", scenario=experiment, kind="chaos", started_at=started)
    write_run_info(run_dir, info)
    session = ChaosSession(target, run_dir, started_at=started, progress=Progress(), seed=7)
    (journal,) = await session.run(schedule([experiment], runs=1, quick=True, rounds=False))
    write_run_info(run_dir, info.model_copy(update={"ended_at": datetime.now(UTC)}))
    code = await asyncio.to_thread(render_run, run_dir)
    return journal, run_dir, code


def assert_passed(journal: Journal, run_dir: Path, code: int) -> dict[str, list[float]]:
    failed = [f"{c.name}: {c.detail}" for c in journal.checks if not c.passed]
    assert journal.status == "completed", f"{journal.status}: {journal.reason}; failed checks: {failed}"
    assert not failed, failed
    assert journal.checker is not None
    totals = journal.checker
    assert (totals["lost"], totals["missing"], totals["duplicated"]) == (0, 0, 0), totals
    assert totals["acknowledged"] > 0 and totals["completed"] == totals["acknowledged"], totals
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0, summary["reason"]
    assert (run_dir / f"charts/experiment-{journal.slug}.png").exists()
    figures: dict[str, list[float]] = {}
    for m in read_measurements(run_dir):
        figures.setdefault(m.metric, []).append(m.value)
    return figures


def addresses_are_proxies(stack: HaStack) -> None:
    """Sentinel hands out proxy addresses only, and replicas replicate through the proxies."""
    layout = stack.layout()
    proxies = {n.proxy_port for n in layout.nodes}
    for name, view in stack.sentinel_views().items():
        assert not isinstance(view, str), f"{name}: {view}"
        assert view.master[1] in proxies, (name, view)
        assert {port for _, port, _ in view.replicas} <= proxies, (name, view)
    for node in stack.redis_nodes.values():
        with Redis(host=node.host, port=node.port, socket_timeout=2) as client:
            info = client.info("replication")
        if info["role"] == "slave":
            assert info["master_port"] in proxies, (node.name, info)


async def test_redis_failover_recovers_through_the_promoted_replica(
    target: OwnedTarget, ha_stack: HaStack, tmp_path: Path
) -> None:
    addresses_are_proxies(ha_stack)
    old = ha_stack.master_node()
    journal, run_dir, code = await drill(target, tmp_path, "redis-failover")
    figures = assert_passed(journal, run_dir, code)
    assert max(figures["failover_recovery"]) < 60  # P5's seed target
    assert max(figures.get("orphan_lifetime", [0.0])) < 600  # R1's
    assert ha_stack.master_node() != old
    assert ha_stack.redis_nodes[old].is_alive()  # the rollback brought it back
    addresses_are_proxies(ha_stack)  # still true after a real failover


async def test_worker_kill_jobs_are_taken_over_within_about_a_lease(target: OwnedTarget, tmp_path: Path) -> None:
    journal, run_dir, code = await drill(target, tmp_path, "worker-kill")
    figures = assert_passed(journal, run_dir, code)
    lease = target.setting("lease_seconds", 30)
    assert figures["stall_detection"] and max(figures["stall_detection"]) < lease * 3 + 5  # well inside R2's 30 min


def test_worker_term_through_drill_chaos_attach(ha_stack: HaStack, tmp_path: Path) -> None:
    drill_cli = find_console_script("drill")
    assert drill_cli is not None
    argv = [str(drill_cli), "chaos", "worker-term", "--quick", "--attach", "--run-dir", str(ha_stack.dir.path)]
    done = subprocess.run([*argv, "--out", str(tmp_path)], capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["kind"] == "chaos" and summary["verdict"] == "PASS"
    (experiment,) = summary["experiments"]
    assert experiment["status"] == "completed" and experiment["failed_checks"] == []
    durations = [m.value for m in read_measurements(run_dir) if m.metric == "shutdown_duration"]
    assert durations and max(durations) < 30  # R3's seed target
    assert "[" in done.stderr and "worker-term #1/1" in done.stderr  # progress was shown


async def test_provider_outage_breaker_lets_only_probes_through(target: OwnedTarget, tmp_path: Path) -> None:
    journal, run_dir, code = await drill(target, tmp_path, "provider-outage")
    figures = assert_passed(journal, run_dir, code)
    assert figures["breaker_violations"] == [0.0] and figures["breaker_probes"][0] >= 1


async def test_overload_sheds_load_and_the_brake_resumes_by_itself(target: OwnedTarget, tmp_path: Path) -> None:
    journal, run_dir, code = await drill(target, tmp_path, "overload")
    figures = assert_passed(journal, run_dir, code)
    assert figures["overload_rejections"][0] >= 1
    resume_after = target.setting("brake_resume_after", 300)
    assert resume_after <= figures["brake_resume"][0] < resume_after * 3 + 10


async def test_db_partition_one_short_cut_of_each_kind(target: OwnedTarget, tmp_path: Path) -> None:
    journal, run_dir, code = await drill(target, tmp_path, "db-partition")
    figures = assert_passed(journal, run_dir, code)
    assert sorted(figures["db_downtime_tolerated"]) == [5.0, 5.0, 5.0]
    proxy = target.toxiproxy().proxy(target.postgres_proxy)
    assert proxy.enabled and not proxy.toxics


async def test_rollbacks_heal_a_real_partition_even_when_the_method_raises(target: OwnedTarget) -> None:
    client = target.toxiproxy()
    proxy = target.postgres_proxy

    async def cut() -> str:
        await asyncio.to_thread(client.set_enabled, proxy, False)
        await asyncio.to_thread(client.add_toxic, proxy, "chaos-test-hold", "timeout", {"timeout": 0})
        return "cut"

    async def explode() -> None:
        raise RuntimeError("the experiment's own bug, mid-fault")

    async def heal() -> list[str]:
        return await asyncio.to_thread(client.heal, proxy)

    experiment = Experiment(
        name="rollback-check",
        title="rollback check",
        description="",
        method=[action("cut Postgres", cut, timeout=10), action("explode", explode, timeout=10)],
        rollbacks=[action("heal the proxy", heal, timeout=10)],
    )
    journal = await run_experiment(experiment, Journal(experiment="rollback-check", title="rollback check"))
    assert journal.status == "aborted" and "mid-fault" in journal.reason
    assert journal.rollbacks[0].status == "succeeded"
    assert sorted(journal.rollbacks[0].output) == ["enabled", "removed toxic chaos-test-hold"]
    spec = client.proxy(proxy)
    assert spec.enabled and not spec.toxics


async def test_without_toxiproxy_the_partition_experiment_says_so_and_stops(
    target: OwnedTarget, tmp_path: Path
) -> None:
    before = target.toxiproxy().proxies()
    target.layout = target.layout.model_copy(update={"toxiproxy_url": None, "postgres_proxy": None})
    started = datetime.now(UTC)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    session = ChaosSession(target, run_dir, started_at=started, progress=Progress())
    (item,) = schedule(["db-partition"], runs=1, quick=True, rounds=False)
    journal = await session.run_one(item, seed=1)
    assert journal.status == "aborted" and "toxiproxy-server is not installed" in journal.reason
    assert [(c.name, c.passed) for c in journal.checks] == [("the experiment could run", False)]
    assert journal.method == [] and journal.faults == []
    assert OwnedTarget(target.stack).toxiproxy().proxies() == before  # nothing was touched


async def test_long_outage_jobs_wait_out_faults_longer_than_the_stall_limit(
    target: OwnedTarget, tmp_path: Path
) -> None:
    journal, run_dir, code = await drill(target, tmp_path, "long-outage")
    figures = assert_passed(journal, run_dir, code)
    assert figures["long_outage_stalled_jobs"] == [0.0] and figures["long_outage_failed_jobs"] == [0.0]
    assert len(figures["long_outage_in_flight"]) == 2 and min(figures["long_outage_in_flight"]) >= 1
    limit = journal.evidence["long_outage"]["stall_limit"]
    assert all(float(f["seconds"]) > limit for f in journal.evidence["long_outage"]["faults"])
    proxy = target.toxiproxy().proxy(target.postgres_proxy)
    assert proxy.enabled and not proxy.toxics
