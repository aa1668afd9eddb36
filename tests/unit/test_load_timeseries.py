"""The load report's time series (loadtests/timeseries.py) and the runner's sources for them, on synthetic input."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devtools.drill import metrics_row
from loadtests import prom, report, timeseries
from loadtests.measure import WorkerWatch
from loadtests.runner import signals_in

BASELINE = Path(__file__).resolve().parents[2] / "loadtests" / "baseline.json"


def _round() -> dict:
    """One measured round as the runner writes it: 4 s of timeline, a recycle at 1.5 s and a TTIN at 2 s."""
    return {
        "round": 1,
        "locust_html": "logs/uvicorn-worker/locust-round1.html",
        "signals": [{"t": 2.0, "signal": "ttin"}],
        "locust": {
            "timeline": [
                {"t": t, "flows": 3 + t, "p50_ms": 40.0 + t, "p99_ms": 300.0 - t, "failures": t % 2, "pids_seen": 3}
                for t in range(4)
            ],
            "workers": {
                "start": 1_000.0,
                "interval_s": 0.5,
                "live": [[0.0, 3], [1.5, 3], [2.0, 4], [3.5, 4]],
                "changes": [{"t": 1.5, "exited": [101], "booted": [104]}, {"t": 2.0, "exited": [], "booted": [105]}],
            },
        },
    }


def _with_timeline(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["targets"]["uvicorn-worker"]["rounds"] = [_round()]
    return data


def test_marks_name_recycles_boots_and_signals_in_time_order() -> None:
    assert timeseries.marks(_round()) == [
        (1.5, "recycle", "recycle 101"),
        (2.0, "boot", "boot 105"),
        (2.0, "signal", "ttin"),
    ]


def test_section_draws_four_panels_with_units_marks_and_the_locust_link() -> None:
    data = _with_timeline(json.loads(BASELINE.read_text()))
    section = timeseries.section(data)
    assert section.startswith("<h2>Over time</h2>")
    assert section.count("<svg") == 1 and "<?xml" not in section
    assert '<a href="logs/uvicorn-worker/locust-round1.html">' in section
    for text in ("flows/s", "ms", "failures/s", "workers", "p99", "live (/proc)", "recycle", "ttin"):
        assert f">{text}<" in section, text


def test_html_gains_only_the_section_and_the_baseline_renders_as_before() -> None:
    baseline = json.loads(BASELINE.read_text())
    assert timeseries.section(baseline) == ""
    plain = report.html(baseline)
    data = _with_timeline(baseline)
    with_series = report.html(data)
    section = timeseries.section(data)
    assert section in with_series
    # The rest of the page is what the data without the round's timeline renders (the bars use medians only).
    data["targets"]["uvicorn-worker"]["rounds"][0]["locust"].pop("timeline")
    assert with_series.replace(section, "") == report.html(data)
    assert "Over time" not in plain


def test_signals_are_read_from_gunicorn_log_lines_relative_to_the_window() -> None:
    origin = datetime(2026, 12, 1, 6, 0, 0, tzinfo=UTC).timestamp()
    log = (
        "[2026-12-01 06:00:03 +0000] [7] [INFO] Handling signal: ttin\n"
        "[2026-12-01 06:00:04 +0000] [9] [INFO] Booting worker with pid: 9\n"
        "[2026-12-01 09:00:05 +0300] [7] [INFO] Handling signal: hup\n"
    )
    assert signals_in(log, origin) == [{"t": 3.0, "signal": "ttin"}, {"t": 5.0, "signal": "hup"}]


def test_worker_watch_records_live_count_and_an_exit() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        watch = WorkerWatch(master=os.getpid(), interval=0.0)
        watch.start(time.time())
        child.kill()
        child.wait(timeout=10)
        watch.look()
    finally:
        child.kill()
    found = watch.as_dict()
    assert found["live"][0][1] - found["live"][-1][1] == 1
    assert found["changes"][-1]["exited"] == [child.pid] and found["changes"][-1]["booted"] == []


def _exposition(requests: int, recycles: int, pids: list[int]) -> str:
    memory = "".join(f'coffee_worker_resident_memory_bytes{{pid="{pid}"}} 5e7\n' for pid in pids)
    return (
        "# TYPE coffee_http_requests_total counter\n"
        f'coffee_http_requests_total{{method="GET",route="probe",status="200"}} {requests - 10}\n'
        'coffee_http_requests_total{method="POST",route="initiate_payment",status="200"} 6\n'
        'coffee_http_requests_total{method="POST",route="tbank-webhook",status="200"} 4\n'
        "# TYPE coffee_worker_restarts_total counter\n"
        f'coffee_worker_restarts_total{{reason="recycle"}} {recycles}\n'
        'coffee_worker_restarts_total{reason="crash"} 1\n'
        "# TYPE coffee_workers gauge\n"
        f"coffee_workers {len(pids)}\n"
        "# TYPE coffee_worker_resident_memory_bytes gauge\n" + memory + "# TYPE coffee_worker_drain_seconds histogram\n"
        'coffee_worker_drain_seconds_bucket{le="+Inf"} 2\ncoffee_worker_drain_seconds_count 2\n'
        "coffee_worker_drain_seconds_sum 0.5\n"
    )


def test_metrics_window_is_the_delta_between_two_scrapes() -> None:
    before = prom.parse(_exposition(100, 2, [11, 12]))
    after = prom.parse(_exposition(340, 3, [12, 13]))
    assert (before["requests"], before["webhooks"], before["pids"], before["workers"]) == (100, 4, [11, 12], 2)
    assert prom.window(before, after) == {
        "requests": 240,
        "webhooks": 0,
        "restarts": {"crash": 0, "recycle": 1},
        "drains": 0,
        "drain_s": 0,
        "pids": [12, 13],
        "workers": 2,
    }
    assert prom.window({"error": "ConnectError: refused"}, after) == {"error": "ConnectError: refused"}


def test_metrics_cross_check_section_sets_metrics_beside_locust_and_proc() -> None:
    record = _round()
    record["locust"] |= {"totals": {"requests": 238}, "worker_requests": {"12": 120, "13": 117, "none": 1}}
    record["metrics"] = prom.window(prom.parse(_exposition(100, 2, [11])), prom.parse(_exposition(340, 3, [12, 13])))
    data = {"targets": {"uvicorn-worker": {"rounds": [record]}}}
    check = prom.cross_check(record)
    assert check is not None
    assert (check["metrics_requests"], check["locust_requests"], check["x_worker_pid_requests"]) == (240, 238, 238)
    assert (check["restarts_by_reason"], check["proc_recycles"]) == ({"recycle": 1}, 1)
    assert check["metrics_pids"] == check["answered_pids"] == [12, 13]
    section = prom.section(data)
    assert section.startswith("<h2>Metrics cross-check</h2>")
    for cell in ("240 (0 webhooks)", "1 (recycle 1)", "12 13"):
        assert f"<td>{cell}</td>" in section, cell
    assert prom.section(json.loads(BASELINE.read_text())) == ""


def test_drill_metrics_row_gives_drain_totals_and_says_why_not_per_worker() -> None:
    metrics = prom.window(prom.parse(_exposition(100, 2, [11])), prom.parse(_exposition(100, 2, [11])))
    metrics |= {"drains": 2.0, "drain_s": 1.5, "restarts": {"signal": 0.0, "recycle": 1.0}, "last_at": 0.4}
    row = metrics_row(metrics)
    assert row.startswith("2 worker drain(s), 1.50 s in all, 0.75 s each on average")
    assert "no pid label" in row and "restarts: recycle 1" in row
    assert metrics_row(None).startswith("— (no metrics")
    assert metrics_row({"error": "ConnectError: refused"}) == "— (ConnectError: refused)"
