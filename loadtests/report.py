"""Render a load report (the dict written to report.json): a stdout summary, Markdown and a self-contained HTML
page with SVG charts (throughput, latency percentiles, worker shares) and, when the rounds carry per-second data,
time series per target (loadtests/timeseries.py, matplotlib)."""

from __future__ import annotations

import html as _html
from typing import Any

from loadtests import compare, prom, timeseries

COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def _f(value: Any, fmt: str = "{:.0f}", none: str = "–") -> str:
    return none if value is None else fmt.format(value)


def one_line(run: dict[str, Any]) -> str:
    if "error" in run:
        return f"FAILED: {run['error'].splitlines()[0]}"
    s = compare.summarize(run)
    return (
        f"{_f(s['flows_per_s'], '{:.2f}')} flows/s, {_f(s['customer_rps'], '{:.1f}')} customer req/s, "
        f"p99 {_f(s['customer_p99_ms'])} ms, "
        f"{s['failures']} failures, /health ceiling {_f(s['health_ceiling_rps'])} req/s, "
        f"CPU {_f(s['cpu_util'], '{:.0%}')}"
    )


def _rows(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    derived = data.get("derived") or compare.derive(data)
    rows = [(name, derived[name]) for name in data.get("targets", {}) if name in derived]
    if "recycling" in derived:
        rows.append((data["recycling"].get("label", "recycling"), derived["recycling"]))
    return rows


def _rounds(run: dict[str, Any]) -> list[dict[str, Any]]:
    return run["rounds"] if "rounds" in run else [run]


def _group(run: dict[str, Any], group: str) -> dict[str, Any] | None:
    """Median figures of one endpoint group over the rounds; failures summed."""
    entries = [e for rd in _rounds(run) if (e := ((rd.get("locust") or {}).get("groups") or {}).get(group))]
    if not entries:
        return None
    median = compare.median
    return {key: median([e[key] for e in entries]) for key in ("p50_ms", "p95_ms", "p99_ms", "rps")} | {
        "failures": sum(e["failures"] for e in entries)
    }


def _ratio_cell(data: dict[str, Any], name: str, key: str) -> str:
    value = (data.get("ratios") or {}).get(f"{name}.{key}")
    return "" if value is None else f" ({value:.2f}×)"


def summary(data: dict[str, Any]) -> str:
    """A fixed-width table for stdout, then the goals."""
    header = (
        f"{'target':<34}{'flows/s':>8}{'cust req/s':>11}{'p50':>7}{'p95':>7}{'p99':>7}{'fail':>6}"
        f"{'/health wrk':>12}{'status wrk':>11}{'CPU ms/req':>11}{'max share dev':>14}"
    )
    lines = [header, "-" * len(header)]
    for name, s in _rows(data):
        lines.append(
            f"{name:<34}{_f(s['flows_per_s'], '{:.2f}'):>8}{_f(s['customer_rps'], '{:.1f}'):>11}"
            f"{_f(s['customer_p50_ms']):>7}"
            f"{_f(s['customer_p95_ms']):>7}{_f(s['customer_p99_ms']):>7}{s['failures']:>6}"
            f"{_f(s['health_ceiling_rps']):>12}{_f(s['status_ceiling_rps']):>11}"
            f"{_f(s['cpu_ms_per_request'], '{:.2f}'):>11}"
            f"{_f(s['share_max_deviation'], '±{:.0%}'):>14}"
        )
    for worker_class, result in (data.get("bare") or {}).items():
        lines.append(f"bare ASGI app under {worker_class.rsplit('.', 1)[-1]}: {_f(result.get('rps'))} req/s (wrk)")
    if floor := data.get("floor"):
        lines.append(
            f"Django floor (status JSON): {_f(floor.get('rps'))} req/s, "
            f"{_f(floor.get('cpu_ms_per_request'), '{:.2f}')} CPU ms/req (wrk)"
        )
    for name, run in [*data.get("targets", {}).items(), ("recycling", data.get("recycling") or {})]:
        if "error" in run:
            lines.append(f"FAILED {name}: {run['error'].splitlines()[0]}")
    lines.append("")
    for goal in data.get("goals") or []:
        mark = "MET   " if goal["met"] else "n/a   " if goal["met"] is None else "MISSED"
        value = goal["value"]
        shown = _f(value, "{:.2f}") if isinstance(value, float) else _f(value, "{}")
        lines.append(f"{mark} {goal['goal']}: {shown} (target {goal['target']}) {goal['miss']}")
    check = data.get("baseline_check")
    if check:
        lines.append(
            f"baseline {check.get('baseline')}: {len(check['regressions'])} regression(s) beyond "
            f"{check['tolerance']:.0%}"
        )
        for row in check["regressions"]:
            lines.append(
                f"  REGRESSED {row['ratio']}: {row['current']:.2f} vs {row['baseline']:.2f} "
                f"(bound {row['bound']:.2f}, {row['direction']})"
            )
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _runs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The raw runs by report label: the targets in order, then the recycling run under its label."""
    runs = {name: data["targets"][name] for name in data.get("targets", {})}
    if "recycling" in data:
        runs[data["recycling"].get("label", "recycling")] = data["recycling"]
    return runs


def _md_header(data: dict[str, Any]) -> list[str]:
    """Title, machine and parameters, the command, and one line per failed run."""
    machine, params = data.get("machine", {}), data.get("parameters", {})
    return [
        "# Load report",
        "",
        f"Run {data.get('started_at')} on {machine.get('cpus')} × {machine.get('cpu_model')}, "
        f"{machine.get('mem_gib')} GiB, kernel {machine.get('kernel')}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', []))}, at end "
        f"{', '.join(f'{x:.2f}' for x in machine.get('loadavg_end', []))}. Took {_f(data.get('elapsed_s'))} s.",
        "",
        f"Server on core {params.get('server_core')}; locust, wrk and the sandbox on core {params.get('load_core')}"
        f"; PostgreSQL unpinned. {params.get('users')} locust users, warm-up {params.get('warmup')} s, measured "
        f"{params.get('duration')} s per target; sandbox latency {params.get('latency_ms')} ms per call; "
        f"gunicorn workers {params.get('workers')}; runserver DEBUG={'1' if params.get('runserver_debug') else '0'}"
        " (runserver-nodebug: DEBUG=0).",
        "",
        f"Profiles: the headline rows poll the status JSON every {params.get('poll_interval')} s (the status "
        "page's own interval, coffee_payment/orders/polling.py); rows named `<target>@poll<s>s` are a second "
        f"window per round at {params.get('second_poll_interval')} s (the earlier, aggressive profile), compared "
        "with runserver under the same profile.",
        "",
        f"Command: `{data.get('command')}`",
        "",
        *[
            f"**{name} failed**: `{run['error'].splitlines()[0]}` (details in report.json)\n"
            for name, run in [*data.get("targets", {}).items(), ("recycling", data.get("recycling") or {})]
            if "error" in run
        ],
    ]


def _md_customer(data: dict[str, Any], rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Customer flow and probes per target (locust, measured window), with ratios vs runserver."""
    head = [
        "target",
        "customer req/s",
        "flows/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "flow p50 ms",
        "probe p99 ms",
        "failures",
        "server CPU",
        "CPU ms/req",
        "locust CPU",
        "sandbox CPU",
        "loadavg before",
    ]
    table = [
        [
            name,
            _f(s["customer_rps"], "{:.1f}") + _ratio_cell(data, name, "customer_rps_x"),
            _f(s["flows_per_s"], "{:.2f}") + _ratio_cell(data, name, "flows_x"),
            _f(s["customer_p50_ms"]),
            _f(s["customer_p95_ms"]),
            _f(s["customer_p99_ms"]) + _ratio_cell(data, name, "customer_p99_x"),
            _f(s["flow_p50_ms"]),
            _f(s["probe_p99_ms"]),
            f"{s['failures']} {s['failures_by_kind'] or ''}".strip(),
            _f(s["cpu_util"], "{:.0%}"),
            _f(s["cpu_ms_per_request"], "{:.2f}"),
            _f(s["load_side_cpu_util"].get("locust"), "{:.0%}"),
            _f(s["load_side_cpu_util"].get("sandbox"), "{:.0%}"),
            _f(s["loadavg_before"], "{:.2f}"),
        ]
        for name, s in rows
    ]
    return [
        "## Customer flow and probes (locust, measured window)",
        "",
        _table(head, table),
        "",
        "Flows/s = customer flows completed (scan → make_pending) per second: the throughput that matters, since a "
        "slow server makes each customer poll more. Ratios in parentheses are vs runserver, measured in this run. "
        "Server CPU = CPU time of master + workers "
        "(from /proc) / window; near 100 % the server core was the limit. Locust and sandbox CPU share the load "
        "core: near 100 % together, the load side was the limit.",
    ]


def _group_cell(entry: dict[str, Any] | None) -> str:
    """One endpoint group of one run: ``p50 / p95 / p99 · req/s`` and failures if any; ``–`` when absent."""
    if not entry:
        return "–"
    cell = f"{_f(entry['p50_ms'])} / {_f(entry['p95_ms'])} / {_f(entry['p99_ms'])} · {_f(entry['rps'], '{:.1f}')}/s"
    return cell + (f" · {entry['failures']} failed" if entry["failures"] else "")


def _md_groups(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Per endpoint group: one row per locust group, one column per run (medians over the rounds)."""
    groups = sorted(
        {g for run in runs.values() for rd in _rounds(run) for g in ((rd.get("locust") or {}).get("groups") or {})}
    )
    table = [[g, *[_group_cell(_group(run, g)) for run in runs.values()]] for g in groups]
    return [
        "## Per endpoint group (p50 / p95 / p99 ms, req/s)",
        "",
        _table(["group", *runs], table),
        "",
        "Medians over the rounds.",
    ]


def _md_rounds(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The headline figures of every round, to show their spread."""
    head = [
        "target",
        "round",
        "flows/s",
        "customer req/s",
        "p99 ms",
        "/health wrk",
        "status wrk",
        "CPU ms/req",
        "loadavg before",
    ]
    table = [
        [
            name,
            str(i + 1),
            _f(r["flows_per_s"], "{:.2f}"),
            _f(r["customer_rps"], "{:.1f}"),
            _f(r["customer_p99_ms"]),
            _f(r["health_ceiling_rps"]),
            _f(r["status_ceiling_rps"]),
            _f(r["cpu_ms_per_request"], "{:.2f}"),
            _f(r["loadavg_before"], "{:.2f}"),
        ]
        for name, figures in rows
        for i, r in enumerate(figures.get("per_round") or [])
    ]
    return ["## Rounds (spread of the headline figures)", "", _table(head, table)]


def _wrk_row(server: str, path: str, w: dict[str, Any], rps: str) -> list[str]:
    return [
        server,
        path,
        rps,
        _f(w.get("p50_ms"), "{:.2f}"),
        _f(w.get("p99_ms"), "{:.2f}"),
        _f(w.get("cpu_ms_per_request"), "{:.3f}"),
        str(w.get("errors") or ""),
    ]


def _floor_row(data: dict[str, Any]) -> list[list[str]]:
    """The Django floor's status-JSON ceiling, with the product's ceiling over it (median; worst round)."""
    floor = data.get("floor")
    if not floor:
        return []
    found = data.get("ratios") or {}
    ratio = found.get(f"{compare.PROD}.status_vs_floor")
    worst = found.get(f"{compare.PROD}.status_vs_floor_worst")
    cell = _f(floor.get("rps")) + (f" (prod {ratio:.2f}×, worst round {worst:.2f}×)" if ratio and worst else "")
    return [_wrk_row("Django floor · ServingUvicornWorker", "status JSON", floor, cell)]


def _md_ceilings(data: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[str]:
    """wrk ceilings of /health and the status JSON per run (medians over the rounds), then the bare ASGI apps."""
    params = data.get("parameters", {})
    table = []
    for name, run in runs.items():
        for path, key, ratio in (
            ("/health", "wrk_health", "health_ceiling_x"),
            ("status JSON", "wrk_status", "status_ceiling_x"),
        ):
            w = compare.median_wrk([rd[key] for rd in _rounds(run) if rd.get(key)])
            if w["rps"] is not None:
                table.append(_wrk_row(name, path, w, _f(w.get("rps")) + _ratio_cell(data, name, ratio)))
    table += _floor_row(data)
    for worker_class, w in (data.get("bare") or {}).items():
        table.append(_wrk_row(f"bare ASGI app · {worker_class.rsplit('.', 1)[-1]}", "/health", w, _f(w.get("rps"))))
    return [
        f"## Ceilings (wrk, one thread, {params.get('wrk_connections')} keep-alive connections, "
        f"{params.get('wrk_seconds')} s)",
        "",
        "`/health` is answered before Django; the status JSON of one `created` order is the Django request "
        "path with one database read and no provider call. The Django floor (`loadtests/floor_app.py`: no "
        "middleware, one `sync_to_async` call, one raw query, the same database, pool and worker class) reads the "
        "same order of the prod target's database right after prod's own wrk. CPU ms/req: the server tree's CPU "
        "(/proc) during that wrk run over its completed requests.",
        "",
        _table(["server", "path", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "errors"], table),
    ]


def _cpu_change(value: float | None, then: float | None) -> str:
    """``value`` ms with its change against the baseline's ``then`` ms (``–`` when either is missing)."""
    if value is None:
        return "–"
    return _f(value, "{:.2f}") + (f" ({(value / then - 1) * 100:+.0f} %)" if then else "")


def _md_cpu(data: dict[str, Any], rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """CPU ms per request: per target (customer window, change vs the committed baseline) and per route (wrk)."""
    base = data.get("cpu_baseline") or {}
    then = base.get("cpu_ms_per_request")
    table = [
        [
            name,
            _f(s.get("poll_interval"), "{:g} s"),
            _cpu_change(s["cpu_ms_per_request"], then if name.partition("@")[0] == compare.PROD else None),
            _f(s["health_cpu_ms"], "{:.3f}"),
            _f(s["status_cpu_ms"], "{:.2f}"),
        ]
        for name, s in rows
    ]
    floor = (data.get("floor") or {}).get("cpu_ms_per_request")
    bare = {k.rsplit(".", 1)[-1]: v.get("cpu_ms_per_request") for k, v in (data.get("bare") or {}).items()}
    return [
        "## CPU per request",
        "",
        _table(["target", "poll interval", "CPU ms/req (customer window)", "/health wrk", "status JSON wrk"], table),
        "",
        f"Django floor (status JSON): {_f(floor, '{:.2f}')} ms/req; bare ASGI app /health: "
        + ", ".join(f"{k} {_f(v, '{:.3f}')}" for k, v in bare.items())
        + f" ms/req. The customer window's figure is the server's CPU over every request of the window (its mix "
        f"depends on the poll interval); the committed baseline ({base.get('file', '–')}) had "
        f"{_f(then, '{:.2f}')} ms/req for prod"
        + (f" under {base['profile']}" if base.get("profile") else " under the same profile")
        + ". The route figures are the wrk ceilings' (one route, the server saturated).",
    ]


def _md_workers(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each worker pid: its share of the requests and its RSS (MiB) at boot, window start and window end."""
    table = [
        [
            name,
            pid,
            _f(s["worker_shares"].get(pid), "{:.1%}"),
            _f(rss.get("boot"), "{:.1f}"),
            _f(rss.get("start"), "{:.1f}"),
            _f(rss.get("end"), "{:.1f}"),
        ]
        for name, s in rows
        for pid, rss in s["rss_mb"].items()
    ]
    head = ["target", "pid", "share of requests", "RSS boot MiB", "RSS start MiB", "RSS end MiB"]
    return ["## Worker processes", "", _table(head, table)]


def _md_lifecycle(data: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[str]:
    """Boot and stop seconds and the stop's exit code per run."""
    table = [
        [
            name,
            _f(run.get("boot_s"), "{:.1f}"),
            _f(run.get("stop_s"), "{:.1f}"),
            _f(run.get("stop_exit_code"), "{}"),
        ]
        for name, run in runs.items()
    ]
    return [
        "## Lifecycle",
        "",
        _table(["target", "boot s (migrate + seed + ready)", "stop s (TERM)", "exit code"], table),
        "",
        "runserver has no TERM handler (exit −15 is the signal). A stop that takes the whole graceful timeout "
        f"({data.get('parameters', {}).get('graceful_timeout')} s) means workers did not drain and were killed.",
    ]


def _md_shares_note(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """How worker shares are counted, and the duplicate makes (exactly-once dispense) per target."""
    return [
        "Shares count locust's requests by `X-Worker-Pid` (a gunicorn master serves none). Exactly-once "
        "dispense: " + "; ".join(f"{name} {s['duplicate_makes']} duplicate make(s)" for name, s in rows) + "."
    ]


def _md_goals(data: dict[str, Any]) -> list[str]:
    """The goals (compare.goals) with measured value, met and by how much."""
    table = [
        [
            g["goal"],
            g["target"],
            _f(g["value"], "{:.2f}") if isinstance(g["value"], float) else _f(g["value"], "{}"),
            {True: "yes", False: "**no**", None: "n/a"}[g["met"]],
            g["miss"],
        ]
        for g in data.get("goals") or []
    ]
    return [
        "## Goals (uvicorn-worker = prod mode)",
        "",
        _table(["goal", "target", "measured", "met", "by how much"], table),
    ]


def _md_recycling(data: dict[str, Any]) -> list[str]:
    """The recycling run against prod mode without recycling: throughput, ceiling, recycles, boot CPU, USS."""
    derived = data.get("derived") or {}
    rec, prod = derived.get("recycling") or {}, derived.get(compare.PROD) or {}
    return [
        "## Recycling",
        "",
        f"{data['recycling'].get('label')}: {_f(rec.get('customer_rps'), '{:.1f}')} customer req/s vs "
        f"{_f(prod.get('customer_rps'), '{:.1f}')} without (ratio "
        f"{_f((data.get('ratios') or {}).get('recycling.rps_kept'), '{:.2f}')}); status-JSON ceiling "
        f"{_f(rec.get('status_ceiling_rps'), '{:.0f}')} vs {_f(prod.get('status_ceiling_rps'), '{:.0f}')} req/s; "
        f"recycles counted in the server log: {rec.get('recycles_in_window')} in the measured windows, "
        f"{rec.get('recycles_in_ceilings')} during the wrk ceilings ({rec.get('workers_replaced')} new worker "
        f"pid(s) seen in the windows). A recycled worker's boot costs "
        f"{_f(rec.get('boot_cpu_s'), '{:.3f}')} s of CPU (its own log line; "
        f"{_f(prod.get('worker_boot_cpu_s'), '{:.2f}')} s for the first boot as sampled from /proc); a "
        f"worker's own memory (USS) at the end of a window: {_f(rec.get('worker_uss_mib'), '{:.1f}')} MiB "
        f"with recycling, {_f(prod.get('worker_uss_mib'), '{:.1f}')} MiB without.",
    ]


def _md_baseline_check(check: dict[str, Any]) -> list[str]:
    """Each compared ratio against the baseline's, with its bound (compare.check_baseline)."""
    table = [
        [r["ratio"], f"{r['baseline']:.3f}", f"{r['current']:.3f}", f"{r['bound']:.3f}", "yes" if r["ok"] else "**no**"]
        for r in check["compared"]
    ]
    return [
        f"## Baseline check (tolerance {check['tolerance']:.0%}, {check['baseline']})",
        "",
        _table(["ratio", "baseline", "now", "bound", "ok"], table),
    ]


def markdown(data: dict[str, Any]) -> str:
    """The report as Markdown: header, then one section per builder above, separated by blank lines."""
    rows, runs = _rows(data), _runs(data)
    sections = [
        _md_groups(runs),
        _md_rounds(rows),
        _md_ceilings(data, runs),
        _md_cpu(data, rows),
        _md_workers(rows),
        _md_lifecycle(data, runs),
        _md_shares_note(rows),
        _md_goals(data),
    ]
    if "recycling" in data:
        sections.append(_md_recycling(data))
    if check := data.get("baseline_check"):
        sections.append(_md_baseline_check(check))
    sections.append(["## Versions", "", ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items() if v)])
    lines = _md_header(data) + _md_customer(data, rows)
    for section in sections:
        lines += ["", *section]
    return "\n".join([*lines, ""])


def _bars(title: str, series: list[tuple[str, list[tuple[str, float | None]]]], unit: str, width: int = 720) -> str:
    """A grouped horizontal bar chart: series = [(group label, [(bar label, value)])]."""
    values = [v for _, bars in series for _, v in bars if v]
    top = max(values) if values else 1.0
    bar_h, gap, left = 16, 12, 230
    height = 30 + sum(len(bars) * bar_h + gap for _, bars in series)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12"><text x="0" y="16" font-weight="bold">{_html.escape(title)}</text>'
    ]
    y = 30
    for group, bars in series:
        out.append(f'<text x="0" y="{y + 12}">{_html.escape(group)}</text>')
        for index, (label, value) in enumerate(bars):
            w = 0 if not value else (width - left - 120) * value / top
            out.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 3}" fill="{COLORS[index % len(COLORS)]}"/>'
            )
            out.append(
                f'<text x="{left + w + 4:.1f}" y="{y + 11}">{_html.escape(label)} {_f(value, "{:.1f}")} {unit}</text>'
            )
            y += bar_h
        y += gap
    out.append("</svg>")
    return "".join(out)


def _stacked(title: str, rows: list[tuple[str, dict[str, float]]], width: int = 720) -> str:
    """One 100 % bar per target, split by worker pid."""
    bar_h, left = 22, 230
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{40 + len(rows) * (bar_h + 8)}" '
        f'font-family="sans-serif" font-size="12"><text x="0" y="16" font-weight="bold">{_html.escape(title)}'
        "</text>"
    ]
    y = 30
    for name, shares in rows:
        out.append(f'<text x="0" y="{y + 15}">{_html.escape(name)}</text>')
        x = float(left)
        for index, (pid, share) in enumerate(shares.items()):
            w = (width - left - 10) * share
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLORS[index % 9]}">'
                f"<title>pid {pid}: {share:.1%}</title></rect>"
            )
            if w > 40:
                out.append(f'<text x="{x + 4:.1f}" y="{y + 15}" fill="white">{share:.0%}</text>')
            x += w
        y += bar_h + 8
    out.append("</svg>")
    return "".join(out)


def html(data: dict[str, Any]) -> str:
    rows = _rows(data)
    throughput = [
        (name, [("flows/s ×10", (s["flows_per_s"] or 0) * 10), ("customer req/s", s["customer_rps"])])
        for name, s in rows
    ]
    latency = [
        (name, [("p50", s["customer_p50_ms"]), ("p95", s["customer_p95_ms"]), ("p99", s["customer_p99_ms"])])
        for name, s in rows
    ]
    ceiling = [
        (name, [("/health", s["health_ceiling_rps"]), ("status JSON", s["status_ceiling_rps"])]) for name, s in rows
    ]
    ceiling += [
        (f"bare · {wc.rsplit('.', 1)[-1]}", [("/health", r.get("rps"))]) for wc, r in (data.get("bare") or {}).items()
    ]
    goals = "".join(
        f"<tr><td>{_html.escape(g['goal'])}</td><td>{_html.escape(g['target'])}</td>"
        f"<td>{_f(g['value'], '{:.2f}') if isinstance(g['value'], float) else _f(g['value'], '{}')}</td>"
        f"<td style='color:{'green' if g['met'] else 'gray' if g['met'] is None else 'crimson'}'>"
        f"{ {True: 'met', False: 'missed', None: 'n/a'}[g['met']] } {_html.escape(g['miss'])}</td></tr>"
        for g in data.get("goals") or []
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Load report {data.get("started_at")}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}td,th{{padding:2px 8px;text-align:left}}
pre{{background:#f6f6f6;padding:8px;overflow:auto}}</style></head><body>
<h1>Load report</h1><p>{_html.escape(str(data.get("started_at")))} · {_html.escape(str(data.get("command")))}</p>
{_bars("Customer-flow throughput (locust, higher is better)", throughput, "")}
{_bars("Customer-flow latency percentiles (locust, lower is better)", latency, "ms")}
{_bars("Ceilings: /health and the status JSON (wrk, higher is better)", ceiling, "req/s")}
{_stacked("Requests per worker process (X-Worker-Pid)", [(n, s["worker_shares"]) for n, s in rows])}
{timeseries.section(data)}{prom.section(data)}<h2>Goals</h2><table>{goals}</table>
<h2>Summary</h2><pre>{_html.escape(summary(data))}</pre></body></html>
"""


def main(argv: list[str] | None = None) -> int:
    """Re-render report.md / report.html next to a report.json (figures re-derived with the current code)."""
    import json
    import sys
    from pathlib import Path

    path = Path((argv if argv is not None else sys.argv[1:])[0])
    data = json.loads(path.read_text())
    data["derived"] = compare.derive(data)
    data["ratios"] = compare.ratios(data)
    data["goals"] = compare.goals(data)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    path.with_name("report.md").write_text(markdown(data))
    path.with_name("report.html").write_text(html(data))
    print(summary(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
