"""Figures derived from a load run: per-target summaries, same-run ratios vs runserver, goals, baseline check.

Only ratios measured in one run are compared with a baseline: absolute numbers move with the machine and its load,
ratios of targets measured back to back on the same machine much less.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

REFERENCE = "runserver"
REFERENCE_NODEBUG = "runserver-nodebug"
# Ratio-name suffix per reference: "uvicorn-worker.flows_x" is vs runserver (DEBUG=1, as `invoke serve` runs it),
# "uvicorn-worker.flows_x_nodebug" vs runserver with DEBUG=0.
REFERENCES = {REFERENCE: "", REFERENCE_NODEBUG: "_nodebug"}
PROD = "uvicorn-worker"
# A second locust profile's runs are reported as "<target>@<profile>" (runner.AGGRESSIVE); each is compared with
# the reference measured under the same profile.
PROFILE_SEP = "@"


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _shares(counts: dict[str, int], master: str) -> dict[str, float]:
    """Requests per server process, share of total; a response without X-Worker-Pid counts for the master
    (runserver is one process)."""
    counts = dict(counts)
    if "none" in counts:
        counts[master] = counts.get(master, 0) + counts.pop("none")
    total = sum(counts.values())
    return {pid: n / total for pid, n in sorted(counts.items())} if total else {}


def _deviation(shares: dict[str, float]) -> float | None:
    n = len(shares)
    return max(abs(share * n - 1) for share in shares.values()) if n > 1 else None


def _one_round(run: dict[str, Any], rd: dict[str, Any]) -> dict[str, Any]:
    """Headline figures of one measured window ``rd`` of ``run``."""
    locust = rd.get("locust") or {}
    seconds = locust.get("seconds") or 0
    customer = _get(locust, "classes", "customer") or {}
    flow = locust.get("flow") or {}
    requests = _get(locust, "totals", "requests") or 0
    cpu = rd.get("cpu_s")
    samples = rd.get("samples") or {}
    start_workers = set((samples.get("start") or {}).get("workers") or [])
    seen = {int(pid) for pid in (locust.get("worker_requests") or {}) if pid.isdigit()}
    seen |= set((samples.get("end") or {}).get("workers") or [])
    return {
        "customer_rps": customer.get("rps"),
        "total_rps": _get(locust, "totals", "rps"),
        "flows_per_s": ((flow.get("requests") or 0) - (flow.get("failures") or 0)) / seconds if seconds else None,
        "flow_p50_ms": flow.get("p50_ms"),
        "flow_p99_ms": flow.get("p99_ms"),
        "customer_p50_ms": customer.get("p50_ms"),
        "customer_p95_ms": customer.get("p95_ms"),
        "customer_p99_ms": customer.get("p99_ms"),
        "probe_p99_ms": _get(locust, "classes", "probe", "p99_ms"),
        "cpu_s": cpu,
        "cpu_util": cpu / seconds if cpu is not None and seconds else None,
        "cpu_ms_per_request": cpu * 1000 / requests if cpu is not None and requests else None,
        "health_ceiling_rps": _get(rd, "wrk_health", "rps"),
        "status_ceiling_rps": _get(rd, "wrk_status", "rps"),
        # CPU ms per request of one route, sampled around its wrk ceiling (server tree, from /proc).
        "health_cpu_ms": _get(rd, "wrk_health", "cpu_ms_per_request"),
        "status_cpu_ms": _get(rd, "wrk_status", "cpu_ms_per_request"),
        # Workers that appeared during the window: recycled (max_requests) or crashed and replaced.
        "workers_replaced": len(seen - start_workers) if start_workers else None,
        # Counted from the server's log (the recycling target logs at info): in the locust window / in the wrk runs.
        "recycles_in_window": (rd.get("recycles") or {}).get("window"),
        "recycles_in_ceilings": (rd.get("recycles") or {}).get("ceilings"),
        "boot_cpu_s": median(rd.get("boot_cpu_s") or []),
        "worker_uss_mib": median([m["uss_mib"] for m in (rd.get("memory_end") or {}).values() if m]),
        "loadavg_before": (rd.get("loadavg_before") or run.get("loadavg_before") or [None])[0],
        "poll_interval": rd.get("poll_interval"),
    }


def median(values: list[Any]) -> float | None:
    found = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(found) if found else None


ROUND_KEYS = (
    "customer_rps",
    "flows_per_s",
    "customer_p99_ms",
    "health_ceiling_rps",
    "status_ceiling_rps",
    "cpu_ms_per_request",
    "status_cpu_ms",
    "loadavg_before",
)


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one target: the median over its rounds (a run without ``rounds`` is one round);
    failures, requests per worker and replaced workers summed over the rounds."""
    rounds = run["rounds"] if "rounds" in run else [run]
    per = [_one_round(run, rd) for rd in rounds] or [_one_round(run, {})]
    out: dict[str, Any] = {key: median([p[key] for p in per]) for key in per[0]}
    out["workers_replaced"] = sum(p["workers_replaced"] or 0 for p in per) if rounds else None
    for key in ("recycles_in_window", "recycles_in_ceilings"):
        counted = [p[key] for p in per if p[key] is not None]
        out[key] = sum(counted) if counted else None
    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    load_side: dict[str, list[float]] = {}
    for rd in rounds:
        locust = rd.get("locust") or {}
        kinds.update(locust.get("failures_by_kind") or {})
        counts.update(locust.get("worker_requests") or {})
        for name, value in (locust.get("load_side_cpu_util") or {}).items():
            load_side.setdefault(name, []).append(value)
    samples = run.get("samples") or {}
    master = str(_get(samples, "boot", "master") or "master")
    shares = _shares(dict(counts), master)
    rss: dict[str, dict[str, float | None]] = {}
    ends = {
        "boot": samples.get("boot"),
        "start": _get(rounds[0], "samples", "start") if rounds else None,
        "end": _get(rounds[-1], "samples", "end") if rounds else None,
    }
    for when, sample in ends.items():
        for pid, mb in ((sample or {}).get("rss_mb") or {}).items():
            rss.setdefault(pid, {})[when] = mb
    boot_workers = (samples.get("boot") or {}).get("cpu_by_pid") or {}
    out.update(
        {
            "rounds": len(rounds),
            "per_round": [{key: p[key] for key in ROUND_KEYS} for p in per],
            "failures": sum(kinds.values()),
            "failures_by_kind": dict(kinds),
            "worker_shares": shares,
            "share_max_deviation": _deviation(shares),
            "rss_mb": rss,
            # CPU a worker spent until the server first answered: the price of one (re)boot on the server core.
            "worker_boot_cpu_s": sum(boot_workers.values()) / len(boot_workers) if boot_workers else None,
            "load_side_cpu_util": {name: statistics.median(values) for name, values in load_side.items()},
            "duplicate_makes": _get(run, "dispense", "duplicates"),
            "stop_exit_code": run.get("stop_exit_code"),
        }
    )
    return out


def median_wrk(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median req/s and latency of several wrk runs (errors summed)."""
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.get("errors") or {})
    return {
        "rps": median([r.get("rps") for r in results]),
        "p50_ms": median([r.get("p50_ms") for r in results]),
        "p99_ms": median([r.get("p99_ms") for r in results]),
        "cpu_ms_per_request": median([r.get("cpu_ms_per_request") for r in results]),
        "errors": dict(errors),
    }


def derive(data: dict[str, Any]) -> dict[str, Any]:
    derived = {name: summarize(run) for name, run in data.get("targets", {}).items() if "error" not in run}
    if "recycling" in data and "error" not in data["recycling"]:
        derived["recycling"] = summarize(data["recycling"])
    return derived


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


# Ratio name suffix → True when higher is better.
HIGHER_IS_BETTER = {
    "flows_x": True,
    "customer_rps_x": True,
    "customer_p99_x": False,
    "health_ceiling_x": True,
    "status_ceiling_x": True,
    "health_vs_bare": True,
    "status_vs_floor": True,
    "rps_kept": True,
    "cost_model": False,
    "cpu_vs_baseline": False,
}


def higher_is_better(key: str) -> bool:
    """Whether a ratio named ``key`` (``target.suffix``, maybe ``_nodebug``) improves upward; unknown: True."""
    return HIGHER_IS_BETTER.get(key.rsplit(".", 1)[-1].removesuffix("_worst").removesuffix("_nodebug"), True)


def _per_round_ratio(a: dict[str, Any], b: dict[str, Any], key: str, worst: Callable[..., float]) -> float | None:
    """The worst (``min`` or ``max``) of round i's ``a[key] / b[key]`` over the rounds both have (interleaved
    rounds: round i of two targets ran back to back); None when no round pairs."""
    pairs = zip(a.get("per_round") or [], b.get("per_round") or [], strict=False)
    found = [r for x, y in pairs if (r := _ratio(x.get(key), y.get(key))) is not None]
    return worst(found) if found else None


def floor_ratios(data: dict[str, Any], derived: dict[str, Any]) -> dict[str, float | None]:
    """The product's status-JSON ceiling over the Django floor's (``data["floor"]``), median and worst round."""
    floor, prod = data.get("floor") or {}, derived.get(PROD) or {}
    if not floor or not prod:
        return {}
    rounds = [r.get("rps") for r in floor.get("rounds") or []]
    ours = [r.get("status_ceiling_rps") for r in prod.get("per_round") or []]
    per_round = [x for a, b in zip(ours, rounds, strict=False) if (x := _ratio(a, b)) is not None]
    return {
        f"{PROD}.status_vs_floor": _ratio(prod.get("status_ceiling_rps"), floor.get("rps")),
        f"{PROD}.status_vs_floor_worst": min(per_round) if per_round else None,
    }


def _vs_reference(name: str, figures: dict[str, Any], ref: dict[str, Any], suffix: str) -> dict[str, float | None]:
    """``name``'s ratios vs one reference (medians), and the worst round of flows and p99 (``…_worst``)."""
    found = {
        f"{name}.flows_x{suffix}": _ratio(figures["flows_per_s"], ref["flows_per_s"]),
        f"{name}.customer_rps_x{suffix}": _ratio(figures["customer_rps"], ref["customer_rps"]),
        f"{name}.customer_p99_x{suffix}": _ratio(figures["customer_p99_ms"], ref["customer_p99_ms"]),
        f"{name}.health_ceiling_x{suffix}": _ratio(figures["health_ceiling_rps"], ref["health_ceiling_rps"]),
        f"{name}.status_ceiling_x{suffix}": _ratio(figures["status_ceiling_rps"], ref["status_ceiling_rps"]),
    }
    found[f"{name}.flows_x{suffix}_worst"] = _per_round_ratio(figures, ref, "flows_per_s", min)
    found[f"{name}.customer_p99_x{suffix}_worst"] = _per_round_ratio(figures, ref, "customer_p99_ms", max)
    return found


def cpu_ratios(data: dict[str, Any], derived: dict[str, Any]) -> dict[str, float | None]:
    """CPU ms per customer-window request of each prod run (every profile) over the committed baseline's
    (``data["cpu_baseline"]["cpu_ms_per_request"]``): median and worst (highest) round."""
    then = _get(data, "cpu_baseline", "cpu_ms_per_request")
    found: dict[str, float | None] = {}
    for name, figures in derived.items():
        if name.partition(PROFILE_SEP)[0] != PROD or not then:
            continue
        rounds = [r.get("cpu_ms_per_request") for r in figures.get("per_round") or []]
        worst = max((x for x in rounds if x is not None), default=None)
        found[f"{name}.cpu_vs_baseline"] = _ratio(figures.get("cpu_ms_per_request"), then)
        found[f"{name}.cpu_vs_baseline_worst"] = _ratio(worst, then)
    return found


def ratios(data: dict[str, Any]) -> dict[str, float]:
    """Same-run ratios: each target vs runserver (DEBUG=1 and DEBUG=0; a ``target@profile`` run vs the reference
    under the same profile), /health vs the bare app, the status JSON vs the Django floor, recycling vs not.
    ``…_worst`` keys are the worst interleaved round; the others are medians (the baseline compares those)."""
    derived = data.get("derived") or derive(data)
    found: dict[str, float | None] = {}
    for name, figures in derived.items():
        base, _, profile = name.partition(PROFILE_SEP)
        if base in REFERENCES or name == "recycling":
            continue
        for reference, suffix in REFERENCES.items():
            ref = derived.get(reference + (PROFILE_SEP + profile if profile else ""))
            if ref:
                found.update(_vs_reference(name, figures, ref, suffix))
        worker_class = _get(data, "targets", name, "worker_class_for_bare")
        bare = _get(data, "bare", worker_class or "", "rps")
        found[f"{name}.health_vs_bare"] = _ratio(figures["health_ceiling_rps"], bare)
    found.update(floor_ratios(data, derived))
    found.update(cpu_ratios(data, derived))
    if "recycling" in derived and PROD in derived:
        found["recycling.rps_kept"] = _ratio(derived["recycling"]["customer_rps"], derived[PROD]["customer_rps"])
        max_requests = _get(data, "parameters", "max_requests")
        boot_cpu, rps = derived[PROD]["worker_boot_cpu_s"], derived[PROD]["total_rps"]
        if boot_cpu and rps and max_requests:
            # Model: every max_requests requests one worker boots again on the same (saturated) core.
            found["recycling.cost_model"] = boot_cpu * rps / max_requests
    return {k: v for k, v in found.items() if v is not None}


class _Bound(NamedTuple):
    """One goal with a bound: ``key`` (``{target}`` filled in) is looked up in the ratios (``ratio``) or in the
    target's derived figures (``figure``); ``ok(value)`` says if it is met, ``miss(value)`` by how much it is not."""

    name: str
    wanted: str
    source: str
    key: str
    ok: Callable[[Any], Any]
    miss: Callable[[Any], str]


def _points_over_5(cost: float) -> str:
    return f"{cost * 100:.1f} % exceeds 5 % by {(cost - 0.05) * 100:.1f} points"


# Throughput of the customer flow = completed purchases per second. Requests per second would flatter a slow
# server: its customers poll the status JSON more times per purchase.
def _short_of(bound: float) -> Callable[[float], str]:
    return lambda x: f"{x:.2f}× is {(1 - x / bound) * 100:.0f} % short of {bound:g}×"


def _over(bound: float) -> Callable[[float], str]:
    return lambda x: f"{x:.2f}× is {x / bound:.1f}× the allowed {bound:g}×"


FLOWS_X, P99_X, FLOOR_X, CPU_X = 10.0, 0.2, 1.0, 0.5
_TARGET_GOALS = (
    _Bound(
        "customer-flow throughput (flows/s) vs runserver DEBUG=1, worst round",
        f"≥ {FLOWS_X:g}×",
        "ratio",
        "{target}.flows_x_worst",
        lambda x: x >= FLOWS_X,
        _short_of(FLOWS_X),
    ),
    _Bound(
        "customer-flow throughput (flows/s) vs runserver DEBUG=0, worst round",
        f"≥ {FLOWS_X:g}×",
        "ratio",
        "{target}.flows_x_nodebug_worst",
        lambda x: x >= FLOWS_X,
        _short_of(FLOWS_X),
    ),
    _Bound(
        "customer-flow p99 vs runserver DEBUG=1, worst round",
        f"≤ {P99_X:g}×",
        "ratio",
        "{target}.customer_p99_x_worst",
        lambda p: p <= P99_X,
        _over(P99_X),
    ),
    _Bound(
        "customer-flow p99 vs runserver DEBUG=0, worst round",
        f"≤ {P99_X:g}×",
        "ratio",
        "{target}.customer_p99_x_nodebug_worst",
        lambda p: p <= P99_X,
        _over(P99_X),
    ),
    _Bound(
        "status JSON ceiling vs Django floor (wrk), worst round",
        f"≥ {FLOOR_X:g}×",
        "ratio",
        f"{PROD}.status_vs_floor_worst",
        lambda x: x >= FLOOR_X,
        _short_of(FLOOR_X),
    ),
    _Bound("failures under load", "0", "figure", "failures", lambda f: f == 0, lambda f: f"{f} failed requests/flows"),
    _Bound(
        "/health ceiling vs runserver (wrk)",
        "≥ 10×",
        "ratio",
        "{target}.health_ceiling_x",
        lambda h: h >= 10,
        lambda h: f"{h:.1f}× is {(1 - h / 10) * 100:.0f} % short of 10×",
    ),
    _Bound(
        "/health vs bare ASGI app, same worker (wrk)",
        "≥ 50 %",
        "ratio",
        "{target}.health_vs_bare",
        lambda b: b >= 0.5,
        lambda b: f"{b * 100:.0f} % is {(0.5 - b) * 100:.0f} points short of 50 %",
    ),
    _Bound(
        "worker shares vs even (max deviation)",
        "≤ ±20 %",
        "figure",
        "share_max_deviation",
        lambda d: d <= 0.2,
        lambda d: f"±{d * 100:.0f} % exceeds ±20 % by {(d - 0.2) * 100:.0f} points",
    ),
)
_RECYCLING_MEASURED = _Bound(
    "throughput cost of max_requests recycling (measured)",
    "≤ 5 %",
    "ratio",
    "",
    lambda c: c <= 0.05,
    _points_over_5,
)
_RECYCLING_MODEL = _Bound(
    "throughput cost of max_requests recycling (boot CPU × rate)",
    "≤ 5 %",
    "ratio",
    "recycling.cost_model",
    lambda m: m <= 0.05,
    _points_over_5,
)


def _goal(name: str, wanted: str, value: float | None, met: bool | None, miss: str) -> dict[str, Any]:
    return {"goal": name, "target": wanted, "value": value, "met": met, "miss": "" if met or met is None else miss}


def _bounded(goal: _Bound, value: float | None) -> dict[str, Any]:
    """``goal`` judged on ``value``: met is None (n/a) when nothing was measured."""
    met = None if value is None else bool(goal.ok(value))
    return _goal(goal.name, goal.wanted, value, met, goal.miss(value) if met is False else "")


def _recycling_measured(derived: dict[str, Any], found: dict[str, float]) -> dict[str, Any]:
    """Throughput lost to recycling (1 − recycling.rps_kept); n/a when no worker recycled inside the window."""
    kept = found.get("recycling.rps_kept")
    cost = None if kept is None else 1 - kept
    recycling = derived.get("recycling") or {}
    if cost is not None and not recycling.get("workers_replaced") and not recycling.get("recycles_in_window"):
        goal = _goal(_RECYCLING_MEASURED.name, _RECYCLING_MEASURED.wanted, cost, None, "")
        goal["miss"] = "no worker recycled inside the measured window: not measurable at this rate"
        return goal
    return _bounded(_RECYCLING_MEASURED, cost)


def _cpu_goal(data: dict[str, Any], found: dict[str, float], target: str) -> dict[str, Any]:
    """CPU ms per customer request ≤ half the committed baseline's, worst round; judged on the run with the
    baseline's poll interval when there is one (``target@…`` with the same profile), else on ``target``."""
    then = _get(data, "cpu_baseline", "cpu_ms_per_request")
    profile = _get(data, "cpu_baseline", "profile")
    name = (
        f"{target}{PROFILE_SEP}{profile}"
        if profile and f"{target}{PROFILE_SEP}{profile}.cpu_vs_baseline" in found
        else target
    )
    bound = _Bound(
        f"CPU ms per customer request vs the baseline's {_f2(then)} ms ({name}), worst round",
        f"≤ {CPU_X:g}×",
        "ratio",
        "",
        lambda c: c <= CPU_X,
        _over(CPU_X),
    )
    value = found.get(f"{name}.cpu_vs_baseline_worst")
    then_cpu, now_cpu = _get(data, "cpu_baseline", "cpu_model"), _get(data, "machine", "cpu_model")
    if value is not None and then_cpu and now_cpu and then_cpu != now_cpu:
        # CPU milliseconds are the one figure here that is not a same-run ratio: another processor makes them
        # incomparable (seen: 8.75 ms on an Intel Xeon host, 11.6 ms for no dearer code on an AMD EPYC one).
        goal = _goal(bound.name, bound.wanted, value, None, "")
        goal["miss"] = f"not comparable: the baseline ran on {then_cpu!r}, this run on {now_cpu!r}"
        return goal
    return _bounded(bound, value)


def _f2(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def profile_flow_ceiling(parameters: dict[str, Any]) -> dict[str, float] | None:
    """The most completed flows/s that any server could serve under the locust profile of ``parameters`` (the
    runner's): a closed loop of ``customers`` = users × the CustomerUser weight's share, each of whom waits
    ``between(0, think_time)`` before Pay and again between flows (``think_time`` in all, on average) and at least
    one ``poll_interval`` after Pay before a poll can see ``make_pending``. A server answering in 0 ms gives
    ``customers / min_cycle_s`` flows/s; real answers (the sandbox's provider latency, queueing) only lower it.
    Returns ``{"customers", "min_cycle_s", "flows_per_s"}``, or None when a parameter is missing."""
    keys = ("users", "customer_weight", "probe_weight", "storm_weight", "think_time", "poll_interval")
    if any(not isinstance(parameters.get(k), (int, float)) for k in keys):
        return None
    weights = parameters["customer_weight"] + parameters["probe_weight"] + parameters["storm_weight"]
    customers = parameters["users"] * parameters["customer_weight"] / weights if weights else 0.0
    cycle = parameters["think_time"] + parameters["poll_interval"]
    if cycle <= 0:
        return None
    return {"customers": customers, "min_cycle_s": cycle, "flows_per_s": customers / cycle}


def _with_ceiling(goal: dict[str, Any], ceiling: dict[str, float] | None, reference: dict[str, Any]) -> dict[str, Any]:
    """A missed flows goal, with how far the profile itself lets it go (``profile_flow_ceiling`` over the
    reference's median flows/s): a miss no server could turn into a pass says so."""
    ref_flows = reference.get("flows_per_s")
    if goal["met"] is not False or ceiling is None or not ref_flows:
        return goal
    reachable = ceiling["flows_per_s"] / ref_flows
    note = (
        f"; the profile allows at most {ceiling['flows_per_s']:.1f} flows/s ({ceiling['customers']:.0f} customers "
        f"/ {ceiling['min_cycle_s']:g} s of waits per flow) = {reachable:.1f}× this reference even at 0 ms per "
        "request" + (": unreachable at these users" if reachable < FLOWS_X else "")
    )
    return {**goal, "miss": goal["miss"] + note}


def goals(data: dict[str, Any], target: str = PROD) -> list[dict[str, Any]]:
    """The issue's benchmark goals for ``target`` (prod mode), each met or missed by how much; a missed flows
    goal also says how far the profile lets any server go (``profile_flow_ceiling``)."""
    derived = data.get("derived") or derive(data)
    found = data.get("ratios") or ratios({**data, "derived": derived})
    sources = {"ratio": found, "figure": derived.get(target) or {}}
    out = [_bounded(goal, sources[goal.source].get(goal.key.format(target=target))) for goal in _TARGET_GOALS]
    ceiling = profile_flow_ceiling(data.get("parameters") or {})
    references = (derived.get("runserver") or {}, derived.get("runserver-nodebug") or {})
    out[0], out[1] = (_with_ceiling(goal, ceiling, ref) for goal, ref in zip(out[:2], references, strict=True))
    out.append(_cpu_goal(data, found, target))
    out.append(_recycling_measured(derived, found))
    out.append(_bounded(_RECYCLING_MODEL, found.get(_RECYCLING_MODEL.key)))
    return out


def check_baseline(current: dict[str, float], baseline: dict[str, float], tolerance: float) -> dict[str, Any]:
    """Compare same-run ratios with a baseline's: a higher-is-better ratio may not fall below
    ``baseline × (1 − tolerance)``, a lower-is-better one may not rise above ``baseline × (1 + tolerance)``."""
    compared, regressions = [], []
    # Worst-round ratios are for the goals: one noisy round should not fail a regression check.
    for key in sorted(k for k in set(current) & set(baseline) if not k.endswith("_worst")):
        higher = higher_is_better(key)
        now, then = current[key], baseline[key]
        bound = then * (1 - tolerance) if higher else then * (1 + tolerance)
        ok = now >= bound if higher else now <= bound
        row = {
            "ratio": key,
            "baseline": then,
            "current": now,
            "bound": bound,
            "direction": "higher is better" if higher else "lower is better",
            "ok": ok,
        }
        compared.append(row)
        if not ok:
            regressions.append(row)
    return {
        "tolerance": tolerance,
        "compared": compared,
        "regressions": regressions,
        "missing": sorted(set(baseline) - set(current)),
    }
