"""What the classification doctor and the detection readers do alike with the user's images: probe
each one once, in a thread pool, and group byte-identical ones by the SHA-1 the probe took.

Threads, because decoding happens in C with the GIL released; at most MAX_WORKERS of them, as each
may hold a full-size decoded image.

`scanning(cache, progress)` sets, for the scans made inside it, the probe cache (probe_cache.py:
unchanged files are not probed again) and whom to tell how far the scan is (`progress(done,
total)`): `frelon train` and `frelon check` scan inside it, whichever reader (classification
doctor, COCO, VOC, YOLO) the data needs, without each passing them on.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Iterator, Optional, Sequence, TypeVar, Union

from .images import BadImage, ImageInfo, probe
from .probe_cache import ProbeCache

MAX_WORKERS = 8        # decoding threads at most (each may hold a full-size decoded image)

T = TypeVar("T")
Probed = Union[ImageInfo, BadImage]


def probe_result(path: str) -> Probed:
    """`images.probe(path)`, or the BadImage that says why the file cannot be used."""
    try:
        return probe(path)
    except BadImage as e:
        return e


def worker_count(workers: Optional[int], n_files: int) -> int:
    """Threads for `n_files`: None or negative is automatic (TrainConfig uses -1), 0 or 1 is one."""
    if workers is None or workers < 0:
        workers = min(MAX_WORKERS, 2 * (os.cpu_count() or 1))
    return max(1, min(workers, n_files))


@dataclass(frozen=True)
class _Scan:
    cache: Optional[ProbeCache] = None
    progress: Optional[Callable[[int, int], None]] = None


_SCAN: ContextVar[_Scan] = ContextVar("frelon_scan", default=_Scan())


@contextmanager
def scanning(cache: Optional[Union[str, os.PathLike]] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> Iterator[Optional[ProbeCache]]:
    """Scans inside remember their probes in the SQLite file `cache` (None: no cache) and call
    `progress(done, total)` as files are probed (when their caller passes none)."""
    probes = ProbeCache(cache) if cache is not None else None
    token = _SCAN.set(_Scan(probes, progress))
    try:
        yield probes
    finally:
        _SCAN.reset(token)
        if probes is not None:
            probes.close()


def probe_all(paths: Sequence[str], workers: Optional[int] = None,
              progress: Optional[Callable[[int, int], None]] = None) -> list[Probed]:
    """Every path probed once (or its remembered probe, inside `scanning`), the results in the
    paths' order; `progress(done, total)` is called from this thread as they come in: first once
    for all the remembered ones, then for each file probed."""
    scan = _SCAN.get()
    progress = progress or scan.progress
    out: list[Optional[Probed]] = [None] * len(paths)
    todo = _remembered(paths, scan.cache, out)
    if progress is not None and len(todo) < len(paths):
        progress(len(paths) - len(todo), len(paths))
    n = worker_count(workers, len(todo))
    if n <= 1:
        results: Iterable[Probed] = map(probe_result, (paths[i] for i, _ in todo))
        _collect(results, paths, todo, out, scan, progress)
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="frelon-probe") as pool:
            _collect(pool.map(probe_result, (paths[i] for i, _ in todo)), paths, todo, out, scan, progress)
    return out  # type: ignore[return-value]


def _remembered(paths: Sequence[str], cache: Optional[ProbeCache], out: list) -> list[tuple[int, object]]:
    """Fill `out` with the cache's results; the (index, stat) of the files still to probe."""
    if cache is None:
        return [(i, None) for i in range(len(paths))]
    todo = []
    cache.prefetch(list(paths))
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError:
            st = None                       # probed: the probe names the problem
        hit = cache.lookup(path, st) if st is not None else None
        if hit is None:
            todo.append((i, st))
        else:
            out[i] = hit
    return todo


def _collect(results: Iterable[Probed], paths: Sequence[str], todo: list[tuple[int, object]], out: list,
             scan: _Scan, progress: Optional[Callable[[int, int], None]]) -> None:
    done = len(paths) - len(todo)
    for (i, st), result in zip(todo, results):
        out[i] = result
        if scan.cache is not None and st is not None:
            scan.cache.store(paths[i], st, result)
        done += 1
        if progress is not None:
            progress(done, len(paths))


def same_bytes(items: Iterable[tuple[Hashable, T]]) -> list[list[T]]:
    """The groups of two or more items that share a SHA-1 (`items` are (sha1, item) pairs): groups in
    the order of their first item, items in the order given."""
    groups: dict[Hashable, list[T]] = {}
    for sha1, item in items:
        groups.setdefault(sha1, []).append(item)
    return [group for group in groups.values() if len(group) > 1]


class Pace:
    """A `progress(done, total)` that says `(done, total, eta_s)` to `say` once the scan has lasted
    `after` seconds (a short scan says nothing), then at most every `every` seconds, and at its end.
    The ETA is from the pace since the first call (remembered files come in at once, first: they
    do not count as pace); None until it can be told."""

    AFTER_S = 1.0

    def __init__(self, say: Callable[[int, int, Optional[float]], None], every: float = 0.5,
                 after: Optional[float] = None):
        self.say, self.every = say, every
        self.after = self.AFTER_S if after is None else after
        self._start: Optional[tuple[float, int]] = None
        self._last: Optional[float] = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = (now, done)
        t0, done0 = self._start
        if self._last is None and (now - t0 < self.after or done >= total):
            return                                  # not long (yet): nothing to say
        if done < total and self._last is not None and now - self._last < self.every:
            return
        self._last = now
        eta = (now - t0) / (done - done0) * (total - done) if done > done0 else None
        self.say(done, total, 0.0 if done >= total else eta)
