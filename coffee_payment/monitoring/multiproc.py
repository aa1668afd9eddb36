"""The prometheus_client multiprocess directory: prepared before fork, compacted as workers die, scraped.

Facts (client_python "Multiprocess Mode"; ``docs/monitoring.md``): each process
writes ``<type>_<pid>.db`` mmap files into ``PROMETHEUS_MULTIPROC_DIR``; ``MultiProcessCollector`` sums every
``*.db`` file at scrape time; ``mark_process_dead`` removes only a dead pid's *live* gauges. Counters and
histograms of dead workers must stay (a counter never goes backwards), so with recycling their files pile up and
scrape time grows with every recycle (client_python issue 275). :func:`compact` folds a dead worker's files into
one ``<type>_archive.db`` per type, under :data:`LOCK` so that a scrape sees either the dead worker's file or the
archive that includes it, never both or neither.

Everything here runs in the gunicorn master (the listener thread and the ``child_exit`` hook); standard library
plus prometheus_client only.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ARCHIVE = "archive"  # the "pid" part of the compacted files' names: counter_archive.db, histogram_archive.db
_COMPACTED_TYPES = ("counter", "histogram", "summary")
LOCK = threading.Lock()  # compaction vs scrape; both run in the master process


def _write_archive(path: Path, metrics: Iterable[Metric]) -> None:
    """Write merged (not accumulated) samples to ``path`` atomically: a temporary name outside ``*.db``, then
    ``os.replace``."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    archive = MmapedDict(str(temporary))
    try:
        for metric in metrics:
            for sample in metric.samples:
                labels = dict(sample.labels)
                key = mmap_key(metric.name, sample.name, list(labels), list(labels.values()), metric.documentation)
                archive.write_value(key, sample.value, 0.0)
    finally:
        archive.close()
    os.replace(temporary, path)


def compact(directory: Path, pid: int) -> int:
    """Fold the dead worker ``pid``'s counter/histogram/summary files into the archives; drop its gauges.

    Returns the number of files removed. Call in ``child_exit`` (the worker is reaped: it writes no more).
    """
    mark_process_dead(pid, str(directory))
    removed = 0
    with LOCK:
        for typ in _COMPACTED_TYPES:
            dead = directory / f"{typ}_{pid}.db"
            if not dead.exists():
                continue
            archive = directory / f"{typ}_{ARCHIVE}.db"
            sources = [str(f) for f in (archive, dead) if f.exists()]
            _write_archive(archive, MultiProcessCollector.merge(sources, accumulate=False))
            dead.unlink()
            removed += 1
        for gauge in glob.glob(str(directory / f"gauge_*_{pid}.db")):  # non-live gauge modes, if any were used
            os.unlink(gauge)
            removed += 1
    return removed


class LockedMultiProcessCollector(MultiProcessCollector):
    """``MultiProcessCollector`` that reads the files under :data:`LOCK` (consistent with :func:`compact`)."""

    def collect(self) -> Iterable[Metric]:
        with LOCK:
            return list(super().collect())


class WorkerMemoryCollector:
    """``coffee_worker_resident_memory_bytes{pid}`` for every live worker, read from /proc at scrape time."""

    def __init__(self, worker_pids: Callable[[], Iterable[int]], read_rss: Callable[[int], int | None]) -> None:
        self._worker_pids = worker_pids
        self._read_rss = read_rss

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "coffee_worker_resident_memory_bytes", "Resident memory of each live worker.", labels=["pid"]
        )
        for pid in sorted(self._worker_pids()):
            rss = self._read_rss(pid)
            if rss is not None:
                family.add_metric([str(pid)], rss)
        yield family


def scrape_registry(directory: Path, worker_pids: Callable[[], Iterable[int]]) -> CollectorRegistry:
    """The registry the metrics listener serves: every process's files plus live workers' memory."""
    from coffee_payment.monitoring.metrics import resident_memory_bytes

    registry = CollectorRegistry()
    LockedMultiProcessCollector(registry, path=str(directory))
    registry.register(WorkerMemoryCollector(worker_pids, resident_memory_bytes))
    return registry
