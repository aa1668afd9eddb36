"""The drill's progress line counts what its summary counts, in the same terms (devtools/drill.py)."""

from __future__ import annotations

from devtools.drill import Tally, progress_line


def test_progress_line_uses_the_summary_counts_and_terms() -> None:
    steady, inflight = Tally(), Tally()
    for _ in range(5):
        steady.record("completed", code=200, latency=0.01)
    steady.record("completed", code=503)  # a 5xx is lost, as in the summary
    steady.record("refused", kind="ConnectError")
    steady.record("refused", kind="ConnectError")
    steady.record("lost", kind="ReadTimeout")
    inflight.record("completed", code=200, latency=3.0)

    line = progress_line(12.5, steady, inflight, 4, "event sent")

    summary = steady.summary()
    assert summary["attempted"] == summary["completed"] + summary["refused"] + summary["lost"] == 9
    assert (
        f"steady: {summary['attempted']} attempted: {summary['completed']} completed, "
        f"{summary['refused']} refused, {summary['lost']} lost" in line
    )
    assert "in-flight: 1/4 completed, 0 lost" in line
    assert line.startswith("t= 12.5s") and line.endswith("event sent")
