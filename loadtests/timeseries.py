"""Time series of each target's measured window for the HTML load report, drawn by matplotlib as inline SVG.

Per target and round, four panels over the seconds of the window, one unit per axis: completed customer flows per
second; customer-request latency p50 and p99 (ms) of the requests that ended in that second; failures per second
(HTTP failures plus failed flows); live worker processes (the master's children in /proc, every 0.5 s) beside the
workers that answered in that second (distinct ``X-Worker-Pid``). Worker recycles (a pid replaced) and the
signals gunicorn's master logged are drawn as vertical lines on every panel. Each chart links locust's own HTML
report of that round.

Sources, all in report.json per round (written by loadtests/runner.py): ``locust.timeline`` (locustfile.timeline),
``locust.workers`` (measure.WorkerWatch), ``signals`` (runner.signals_in) and ``locust_html``. A report without
them (e.g. loadtests/baseline.json) gets no section at all: ``section`` returns "".
"""

from __future__ import annotations

import html as _html
import io
from typing import Any
from urllib.parse import quote

PANELS = (
    # (title, unit, [(series key, label, colour)])
    ("Completed customer flows", "flows/s", [("flows", "completed", "#4e79a7")]),
    ("Customer-request latency", "ms", [("p50_ms", "p50", "#59a14f"), ("p99_ms", "p99", "#e15759")]),
    ("Failures (HTTP + flows)", "failures/s", [("failures", "failures", "#e15759")]),
    ("Worker processes", "workers", [("pids_seen", "answered (X-Worker-Pid)", "#f28e2b")]),
)


def marks(record: dict[str, Any]) -> list[tuple[float, str, str]]:
    """``(t, kind, text)`` to draw over a round: ``recycle`` when a worker pid was replaced, ``exit``/``boot`` for
    one-sided changes, ``signal`` for every signal the master logged; ``t`` in seconds since the window's start."""
    found: list[tuple[float, str, str]] = []
    for change in ((record.get("locust") or {}).get("workers") or {}).get("changes", []):
        exited, booted = change.get("exited", []), change.get("booted", [])
        kind = "recycle" if exited and booted else "exit" if exited else "boot"
        found.append((change["t"], kind, f"{kind} {' '.join(map(str, exited or booted))}"))
    found += [(s["t"], "signal", s["signal"]) for s in record.get("signals") or []]
    return sorted(found)


MARK_STYLE = {
    "recycle": ("#7f7f7f", "--"),
    "exit": ("#b07aa1", "--"),
    "boot": ("#76b7b2", "--"),
    "signal": ("#d62728", ":"),
}


def figure_svg(record: dict[str, Any], salt: str) -> str:
    """One round's four panels as an ``<svg>`` element (no XML prolog: it is inlined); ``salt`` keeps the SVG's
    element ids distinct between charts of one page. Raises KeyError when the round has no ``locust.timeline``."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    timeline = record["locust"]["timeline"]
    live = ((record.get("locust") or {}).get("workers") or {}).get("live", [])
    seconds = [row["t"] + 0.5 for row in timeline]  # a second's figures drawn at its middle
    with rc_context({"svg.hashsalt": salt, "svg.fonttype": "none", "font.size": 8}):
        fig = Figure(figsize=(7.2, 6.4), layout="constrained")
        axes = fig.subplots(len(PANELS), 1, sharex=True)
        for ax, (name, unit, series) in zip(axes, PANELS, strict=True):
            for key, label, colour in series:
                values = [row.get(key) for row in timeline]
                ax.plot(seconds, [float("nan") if v is None else v for v in values], marker=".", color=colour,
                        label=label)  # fmt: skip
            ax.set_title(name, loc="left")
            ax.set_ylabel(unit)
            ax.set_ylim(0, max([1, *(row.get(key) or 0 for key, _, _ in series for row in timeline)]) * 1.1)
            if unit != "ms":  # counts: whole-number ticks
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if live:
            times, counts = [t for t, _ in live], [n for _, n in live]
            axes[-1].step(times, counts, where="post", color="#4e79a7", label="live (/proc)")
        drawn: set[str] = set()
        for t, kind, text in marks(record):
            colour, style = MARK_STYLE[kind]
            for ax in axes:
                ax.axvline(t, color=colour, linestyle=style, linewidth=1, label=None if kind in drawn else kind)
                drawn.add(kind)
            if kind == "signal":
                axes[0].annotate(text, (t, 1), xycoords=("data", "axes fraction"), color=colour, fontsize=7)
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper right", fontsize=7)
        axes[-1].set_xlabel("seconds into the measured window")
        axes[-1].set_xlim(0, max([len(timeline), *(t for t, _ in live)]) or 1)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _runs(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    runs = [(name, run) for name, run in (data.get("targets") or {}).items()]
    if data.get("recycling"):
        runs.append((data["recycling"].get("label", "recycling"), data["recycling"]))
    return runs


def section(data: dict[str, Any]) -> str:
    """The HTML section "Over time" with one chart per target and round that has a timeline; "" when none has."""
    parts: list[str] = []
    for label, run in _runs(data):
        for record in run.get("rounds") or []:
            if not (record.get("locust") or {}).get("timeline"):
                continue
            title = f"{label} · round {record.get('round', '?')}"
            link = quote(record["locust_html"]) if record.get("locust_html") else None
            parts.append(
                f"<h3>{_html.escape(title)}</h3>"
                + (f'<p><a href="{_html.escape(link)}">locust\'s own report of this round</a></p>' if link else "")
                + figure_svg(record, salt=f"{label}-{record.get('round')}")
            )
    if not parts:
        return ""
    return (
        "<h2>Over time</h2><p>Per second of each measured window; dashed lines: worker recycles (a pid replaced), "
        "exits and boots; dotted: signals the gunicorn master logged.</p>\n" + "\n".join(parts) + "\n"
    )
