"""What the classification doctor and the detection readers do alike with the user's images: probe
each one once, in a thread pool, and group byte-identical ones by the SHA-1 the probe took.

Threads, because decoding happens in C with the GIL released; at most MAX_WORKERS of them, as each
may hold a full-size decoded image.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Hashable, Iterable, Optional, Sequence, TypeVar, Union

from .images import BadImage, ImageInfo, probe

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


def probe_all(paths: Sequence[str], workers: Optional[int] = None,
              progress: Optional[Callable[[int, int], None]] = None) -> list[Probed]:
    """Every path probed once, the results in the paths' order; `progress(done, total)` is called
    from this thread as they come in."""
    n = worker_count(workers, len(paths))
    if n <= 1:
        return _collect(map(probe_result, paths), len(paths), progress)
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="frelon-probe") as pool:
        return _collect(pool.map(probe_result, paths), len(paths), progress)


def _collect(results: Iterable[Probed], total: int,
             progress: Optional[Callable[[int, int], None]]) -> list[Probed]:
    out = []
    for result in results:
        out.append(result)
        if progress is not None:
            progress(len(out), total)
    return out


def same_bytes(items: Iterable[tuple[Hashable, T]]) -> list[list[T]]:
    """The groups of two or more items that share a SHA-1 (`items` are (sha1, item) pairs): groups in
    the order of their first item, items in the order given."""
    groups: dict[Hashable, list[T]] = {}
    for sha1, item in items:
        groups.setdefault(sha1, []).append(item)
    return [group for group in groups.values() if len(group) > 1]
