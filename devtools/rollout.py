"""Rolling-deploy drill: N pods behind a real nginx ingress, under customer load, each replaced as Kubernetes does.

Pods are gunicorn masters (``gunicorn -c gunicorn.conf.py``, devtools/processes.py) on their own loopback ports,
all on one throw-away PostgreSQL database and one sandbox (devtools/stack.py without its server). The ingress is
nginx (devtools/ingress.py). For each old pod, in turn (``maxSurge: 1``, ``maxUnavailable: 0``):

1. start the new pod; wait until its ``/readyz`` answers 200; add it to the upstream (config + reload);
2. then, in parallel, as the endpoints controller and the kubelet do from the moment the old pod is deleted:
   - endpoints: after ``endpoints_lag`` seconds, remove the old pod from the upstream (config + reload);
   - kubelet: preStop (touch the pod's ``SERVING_DRAIN_FILE``, sleep ``prestop``), then TERM; SIGKILL of the
     process group at ``grace`` seconds after the deletion if the master is still running;
3. the next pod starts once both are done.

Timestamps are epoch seconds (nginx logs ``$msec``). Accounting and the verdict: devtools/rollout_report.py.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools import drill_dispense, rollout_report
from devtools.drill import STAGE_LINE
from devtools.ingress import Ingress, IngressSettings
from devtools.launch import kill_group
from devtools.pg import temporary_database
from devtools.processes import GunicornServer, free_port, wait_until
from devtools.stack import ONE_CLIENT_ENV, Stack, StackConfig

# The production manifests' numbers (tests/unit/test_rollout_drill.py keeps them equal to deploy/k8s).
MANIFEST_PRESTOP_S, MANIFEST_GRACE_S, MANIFEST_KEEPALIVE_S, MANIFEST_GRACEFUL_S = 10.0, 90.0, 75, 60
ASSUMED_ENDPOINTS_LAG_S = 5.0  # docs/deployment.md §5: what the preStop sleep must cover
RAMP_S = 2.0  # clients connecting, fresh workers importing lazily: not part of the throughput baseline


@dataclass
class RolloutOptions:
    """Drill parameters; durations in seconds."""

    pods: int = 3
    workers: int = 2
    customers: int = 6
    probes: int = 1
    warmup: float = 8.0  # the first RAMP_S of it are the "ramp" phase, the rest the throughput baseline
    cooldown: float = 3.0
    prestop: float = MANIFEST_PRESTOP_S  # 0 = no preStop hook
    endpoints_lag: float = ASSUMED_ENDPOINTS_LAG_S
    grace: float = MANIFEST_GRACE_S
    graceful_timeout: int = MANIFEST_GRACEFUL_S
    server_keepalive: int = MANIFEST_KEEPALIVE_S  # GUNICORN_KEEPALIVE of the pods
    upstream_keepalive_timeout: float = 60.0  # the ingress's upstream-keepalive-timeout
    latency_ms: int = 50  # sandbox latency per provider/Tmetr call
    json_path: str | None = None
    quiet: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        if not 1 <= self.pods <= 8 or not 1 <= self.workers <= 8:
            raise ValueError("--pods and --workers must be in 1..8")
        if not 1 <= self.customers <= 200 or not 0 <= self.probes <= 20:
            raise ValueError("--customers must be in 1..200, --probes in 0..20")
        for name in ("warmup", "cooldown", "prestop", "endpoints_lag", "grace", "upstream_keepalive_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= 600:
                raise ValueError(f"--{name.replace('_', '-')} must be a number of seconds in 0..600")
        if self.grace < self.prestop + 1:
            raise ValueError("--grace must leave at least 1 s after the preStop sleep")
        if not 1 <= self.server_keepalive <= 3600 or not 1 <= self.graceful_timeout <= 600:
            raise ValueError("--server-keepalive must be in 1..3600 s, --graceful-timeout in 1..600 s")
        if self.upstream_keepalive_timeout < 1:
            raise ValueError("--upstream-keepalive-timeout must be >= 1 s")
        if self.json_path and not Path(self.json_path).resolve().parent.is_dir():
            raise ValueError(f"--json {self.json_path}: directory does not exist")


@dataclass
class Pod:
    """One pod: its gunicorn master, drain file and the moments of its life (epoch s)."""

    name: str
    server: GunicornServer
    drain_file: Path
    events: dict[str, float] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def boot(self, timeout: float = 90.0) -> None:
        """Start the master, wait for /readyz 200 (TimeoutError with the pod's log)."""
        self.server.start()
        self.events["started"] = time.time()

        def ready() -> bool:
            if not self.server.running():
                raise RuntimeError(f"{self.name} exited while booting:\n{self.server.logs()[-3000:]}")
            try:
                return httpx.get(self.server.url("/readyz"), timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout=timeout, interval=0.1, what=f"{self.name} /readyz 200")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.server.logs()[-3000:]}") from None
        self.events["ready"] = time.time()

    def as_dict(self, t0: float) -> dict[str, Any]:
        stages = [m.group(0) for m in STAGE_LINE.finditer(self.server.logs())] if self.server.process else []
        return {
            "name": self.name,
            "port": self.port,
            "pid": self.server.process.pid if self.server.process else None,
            "exit_code": self.exit_code,
            "shutdown_log": [line for line in stages if "hutdown" in line or "SIG" in line][-12:],
            "events_s": {k: round(v - t0, 3) for k, v in sorted(self.events.items(), key=lambda kv: kv[1])},
        }


class Rollout:
    """One drill run: ``run()`` returns the report dict (``passed``, ``reasons``)."""

    def __init__(self, options: RolloutOptions) -> None:
        options.validate()
        self.o = options
        self.tmp = Path(tempfile.mkdtemp(prefix="rollout-"))
        self.pods: list[Pod] = []
        self.generation = 0
        self.ingress: Ingress | None = None
        self.stack: Stack | None = None
        self.watch = rollout_report.ServerCloseWatch()
        self.marks: dict[str, float] = {}  # epoch s: traffic_start, rollout_start, rollout_end, traffic_end
        self._reload_lock = asyncio.Lock()

    def _say(self, text: str) -> None:
        if not self.o.quiet:
            t = time.time() - self.marks.get("traffic_start", time.time())
            print(f"[rollout t={t:6.1f}s] {text}", flush=True)

    def _new_pod(self, version: str) -> Pod:
        self.generation += 1
        name = f"pod-{self.generation}({version})"
        drain_file = self.tmp / f"drain-{self.generation}"
        # Every pod on this machine: no shared metrics port or multiprocess directory; no recycling (drilled by
        # ``drill-shutdown --event recycle``), so any connection a pod closes before its drain is keep-alive's.
        env = {k: v for k, v in self.stack.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env |= {
            "METRICS_PORT": "0",
            "GUNICORN_MAX_REQUESTS": "0",
            "GUNICORN_WORKERS": str(self.o.workers),
            "GUNICORN_KEEPALIVE": str(self.o.server_keepalive),
            "GUNICORN_GRACEFUL_TIMEOUT": str(self.o.graceful_timeout),
            "GUNICORN_TIMEOUT": str(max(30, self.o.graceful_timeout)),
            "SERVING_DRAIN_FILE": str(drain_file),
        }
        port = free_port()
        env["GUNICORN_PORT"] = str(port)
        pod = Pod(name, GunicornServer(env=env, port=port), drain_file)
        self.pods.append(pod)
        return pod

    async def _set_upstream(self, pods: list[Pod]) -> float:
        async with self._reload_lock:
            return await asyncio.to_thread(self.ingress.set_upstream, [p.port for p in pods])

    def _serving(self) -> list[Pod]:
        ports = set(self.ingress.upstream)
        return [p for p in self.pods if p.port in ports]

    async def _remove_after_lag(self, pod: Pod) -> None:
        await asyncio.sleep(self.o.endpoints_lag)
        pod.events["removed"] = await self._set_upstream([p for p in self._serving() if p is not pod])
        self._say(f"{pod.name} removed from the upstream")

    async def _terminate(self, pod: Pod) -> None:
        deleted = pod.events["deleted"]
        if self.o.prestop > 0:
            pod.drain_file.touch()
            await asyncio.sleep(self.o.prestop)
        pod.events["term"] = time.time()
        self.watch.drain_started(pod.port)
        pod.server.send_signal(signal.SIGTERM)
        self._say(f"{pod.name} TERM")
        while pod.server.running() and time.time() < deleted + self.o.grace:
            await asyncio.sleep(0.05)
        if pod.server.running():
            pod.events["sigkill"] = time.time()
            kill_group(pod.server.pid)
        pod.exit_code = await asyncio.to_thread(pod.server.process.wait, 10)
        kill_group(pod.server.pid)  # workers left by a master that died
        pod.events["exited"] = time.time()
        self._say(f"{pod.name} exited with {pod.exit_code}")

    async def _roll(self, old: Pod) -> None:
        new = self._new_pod("new")
        self._say(f"{new.name} starting to replace {old.name}")
        self.watch.add(new.port)
        await asyncio.to_thread(new.boot)
        new.events["added"] = await self._set_upstream([*self._serving(), new])
        self._say(f"{new.name} ready and in the upstream; deleting {old.name}")
        old.events["deleted"] = time.time()
        await asyncio.gather(self._remove_after_lag(old), self._terminate(old))

    async def _drive(self) -> None:
        from devtools.rollout_traffic import Traffic

        traffic = Traffic(self.ingress.url, self.stack.qr_links[0], customers=self.o.customers, probes=self.o.probes)
        self.traffic = traffic
        self.marks["traffic_start"] = time.time()
        traffic.start()
        ramp = min(RAMP_S, self.o.warmup / 2)
        await asyncio.sleep(ramp)
        traffic.phase, self.marks["before_start"] = "before", time.time()
        await asyncio.sleep(self.o.warmup - ramp)
        traffic.phase, self.marks["rollout_start"] = "rollout", time.time()
        for old in list(self.pods):
            await self._roll(old)
        traffic.phase, self.marks["rollout_end"] = "after", time.time()
        await asyncio.sleep(self.o.cooldown)
        self.marks["traffic_end"] = time.time()
        await traffic.stop()

    def _start(self, database_url: str) -> None:
        nginx_port = free_port()
        # One client address drives every machine's orders: the per-IP and per-device limits would refuse it.
        env = {"DATABASE_URL": database_url, **drill_dispense.STACK_ENV, **ONE_CLIENT_ENV}
        config = StackConfig(
            mode="prod", port=nginx_port, env=env, server=False, auto_pay=True, latency_ms=self.o.latency_ms
        )
        config.log_to, config.var_dir = self.tmp / "logs", self.tmp / "var"
        self.stack = Stack(config).start()
        pods = [self._new_pod("old") for _ in range(self.o.pods)]
        with ThreadPoolExecutor(len(pods)) as pool:
            list(pool.map(Pod.boot, pods))  # re-raises a pod's boot failure
        for pod in pods:
            self.watch.add(pod.port)
        settings = IngressSettings(keepalive_timeout=self.o.upstream_keepalive_timeout)
        self.ingress = Ingress(settings, self.tmp, port=nginx_port).start([p.port for p in pods])
        self._say(f"{len(pods)} pods behind nginx on {self.ingress.url}")

    def run(self) -> dict[str, Any]:
        """Start everything, roll every pod under load, account, stop everything; the report."""
        try:
            with temporary_database("coffee_rollout", migrated=True) as database_url:
                try:
                    self._start(database_url)
                    threading.Thread(target=self.watch.run, daemon=True).start()
                    asyncio.run(self._drive())
                    self.watch.stop()
                    probe = drill_dispense.DispenseProbe(self.stack, count=0, latency=0)
                    probe.adopt_paid_orders()
                    last_term = max(p.events.get("term", 0.0) for p in self.pods)
                    dispenses = probe.account(event_at=time.monotonic() - (time.time() - last_term))
                    report = rollout_report.build(self, dispenses)
                finally:
                    self._stop_all()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.o.json_path:
            Path(self.o.json_path).write_text(rollout_report.dumps(report))
        return report

    def _stop_all(self) -> None:
        self.watch.stop()
        for pod in self.pods:
            pod.server.stop(timeout=10)
            pod.server.log_path.unlink(missing_ok=True)
        if self.ingress is not None:
            self.ingress.stop()
        if self.stack is not None:
            self.stack.stop()

    def options(self) -> dict[str, Any]:
        return asdict(self.o)
