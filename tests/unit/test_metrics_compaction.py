"""Dead workers' metric files are compacted: 1,000 recycles leave the directory and the scrape time flat, and no
count is lost (the real compaction code, real forked processes, prometheus_client in multiprocess mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coffee_payment.monitoring.directory import prepare_dir

ROOT = Path(__file__).resolve().parents[2]
RECYCLES = 1000


def _simulate(directory: Path, recycles: int, *checkpoints: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests.unit.metrics_recycle_sim", str(recycles), *map(str, checkpoints)]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.timeout(180)
def test_thousand_recycles_leave_directory_and_scrape_time_flat(tmp_path):
    report = _simulate(tmp_path, RECYCLES, 10, 100, RECYCLES)
    early, late = report["10"], report[str(RECYCLES)]
    print(f"compaction: after 10 recycles {early}; after {RECYCLES} {late}")
    assert late["files"] == early["files"], report
    assert late["bytes"] == early["bytes"], report
    # Flat, not merely "fast": the scrape reads the same files after 1,000 recycles as after 10 (median of 7).
    assert late["scrape_seconds"] < early["scrape_seconds"] * 3 + 0.002, report
    # Nothing lost: every dead worker's counts are in the totals; dead workers' live gauges are gone.
    assert late["requests"] == 3 * RECYCLES
    assert late["dispenses"] == RECYCLES
    assert late["drains"] == RECYCLES and late["drain_le_0_25"] == RECYCLES
    assert late["in_flight"] == 0


def test_prepare_dir_empties_a_configured_directory_and_creates_one_on_tmpfs(tmp_path):
    configured = tmp_path / "metrics"
    configured.mkdir()
    (configured / "counter_123.db").write_bytes(b"stale")
    (configured / "keep.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(configured)}
    assert prepare_dir(env) == (configured, False)
    assert sorted(p.name for p in configured.iterdir()) == ["keep.txt"]

    env = {}
    path, created = prepare_dir(env, shm=str(tmp_path))
    assert created and path.parent == tmp_path and env["PROMETHEUS_MULTIPROC_DIR"] == str(path)
    assert list(path.iterdir()) == []
