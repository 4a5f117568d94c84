"""The packs a worker serves, and how new versions get in without a restart.

- The engine swaps its pack set in one reference assignment (`Engine.reload`): a request
  reads that reference once, so it sees the old set or the new one, never a mix. A set with
  an error never replaces the served one; the failure shows in /readyz, the log and
  `rules_engine_pack_reload_failing`.
- A watcher thread (never a request) polls the pack folder's fingerprint — every file's path,
  size and mtime — and reloads when it has changed *and then stayed the same for one more
  interval*, so a version being copied in is not loaded half-written. Publishing by renaming
  a finished folder into place is still the safest way (docs/service.md).
- `POST /v1/admin/reload` reloads in the worker that got it and bumps a generation file in
  the runtime folder; the other workers' watchers see it within one interval and reload too.
- The watcher also re-reads the API keys file when it changes (a bad file keeps the old keys)
  and purges the journal past its retention once a day.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..api import Engine, PackLoadError
from ..packs.registry import PackSet, default_cache_dir
from ..problems import Problem
from .metrics import Metrics

log = logging.getLogger("rules_engine.service")
GENERATION_FILE = "reload-generation"


@dataclass
class ReloadStatus:
    ok: bool
    at: float
    trigger: str
    problems: list[Problem] = field(default_factory=list)
    packs: list[str] = field(default_factory=list)

    def to_dict(self, limit: int = 50) -> dict:
        errors = [p for p in self.problems if p.severity == "error"]
        return {"ok": self.ok, "at": _iso(self.at), "trigger": self.trigger, "errors": len(errors),
                "problems": [p.to_dict() | {"location": _loc(p)} for p in errors[:limit]]}


def _loc(p: Problem) -> str:
    return f"{p.file}:{p.line}:{p.col}" if p.line else p.file


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def fingerprint(root: Path) -> str:
    """Paths, sizes and mtimes of every file under `root` (hidden folders skipped)."""
    h = hashlib.sha256()
    stack = [root]
    entries: list[tuple[str, int, int]] = []
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    try:
                        if e.is_dir(follow_symlinks=True):
                            stack.append(Path(e.path))
                        elif e.is_file(follow_symlinks=True):
                            st = e.stat(follow_symlinks=True)
                            entries.append((os.path.relpath(e.path, root), st.st_size, st.st_mtime_ns))
                    except OSError:
                        continue
        except OSError:
            continue
    for rel, size, mtime in sorted(entries):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def pack_set_id(ps: PackSet) -> str:
    """One name for the whole set in force: sha256 over every compiled pack's chain and hash."""
    labels = sorted(f"{'/'.join(p.chain)}#{p.content_hash}" for p in ps.packs())
    return hashlib.sha256("\n".join(labels).encode("utf-8")).hexdigest()


class PackState:
    def __init__(self, regions: str | os.PathLike, *, cache: bool, metrics: Metrics, runtime_dir: str | None = None):
        self.root = Path(regions)
        self.metrics = metrics
        self.cache_dir = default_cache_dir() if cache else None
        self.runtime_dir = Path(runtime_dir) if runtime_dir else None
        self._lock = threading.Lock()
        fp = fingerprint(self.root)
        self.engine = Engine.from_directory(self.root, cache=self.cache_dir or False)  # raises PackLoadError
        self.fingerprint = fp
        self.loaded_at = time.time()
        self.last = ReloadStatus(True, self.loaded_at, "start", list(self.engine.packs.problems),
                                 [p.label for p in self.engine.packs.packs()])
        self._generation = self._read_generation()
        self._publish()

    # ------------------------------------------------------------ what is served
    @property
    def ready(self) -> bool:
        return bool(self.engine.packs.compiled)

    def _publish(self) -> None:
        self.metrics.set_packs([(p.info.region, p.info.version, p.content_hash) for p in self.engine.packs.packs()],
                               self.loaded_at)
        self.metrics.reload_failing.set(0 if self.last.ok else 1)

    # ------------------------------------------------------------ reloading
    def reload(self, trigger: str) -> ReloadStatus:
        """Load the folder again; swap only if every pack is valid. Never raises for bad packs."""
        with self._lock:
            fp = fingerprint(self.root)
            t0 = time.perf_counter()
            try:
                r = self.engine.reload()
                ok, problems, labels = r.ok, r.problems, r.packs
            except Exception as e:  # a bug in loading must not take the served set down
                log.exception("reload crashed; the served packs stay")
                ok, problems, labels = False, [Problem("E-RELOAD", f"{type(e).__name__}: {e}")], []
            self.fingerprint = fp
            self.last = ReloadStatus(ok, time.time(), trigger, problems, labels)
            self.metrics.reloads.labels("ok" if ok else "failed", trigger).inc()
            if ok:
                self.loaded_at = self.last.at
                log.info("packs reloaded (%s) in %.0f ms: %s", trigger, (time.perf_counter() - t0) * 1000,
                         ", ".join(labels))
            else:
                errors = [p for p in problems if p.severity == "error"]
                log.error("reload (%s) refused, %d error(s); still serving the previous packs. First: %s", trigger,
                          len(errors), errors[0].format(with_source=False) if errors else "?")
            self._publish()
            return self.last

    def _generation_path(self) -> Path | None:
        return self.runtime_dir / GENERATION_FILE if self.runtime_dir else None

    def _read_generation(self) -> str | None:
        p = self._generation_path()
        try:
            return p.read_text() if p else None
        except OSError:
            return None

    def bump_generation(self) -> None:
        """Tell the other workers to reload (they poll this file)."""
        p = self._generation_path()
        if p is None:
            return
        token = f"{time.time_ns()}-{os.getpid()}"
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        self._generation = token  # first: this worker's own watcher must not take it for a peer's
        try:
            tmp.write_text(token)
            os.replace(tmp, p)
        except OSError as e:
            log.warning("cannot signal the other workers to reload: %s", e)

    # ------------------------------------------------------------ watcher
    def watch(self, interval: float, stop: threading.Event, extra: list[Callable[[], None]] | None = None,
              *, folder: bool = True) -> None:
        """Poll until `stop`; run in a daemon thread. `folder=False`: only follow other workers' reloads."""
        pending: str | None = None
        while not stop.wait(interval):
            try:
                gen = self._read_generation()
                if gen is not None and gen != self._generation:
                    self._generation = gen
                    if not gen.endswith(f"-{os.getpid()}"):  # this worker's own admin reload is done already
                        self.reload("peer")
                        pending = None
                elif folder:
                    fp = fingerprint(self.root)
                    if fp == self.fingerprint:
                        pending = None
                    elif fp == pending:  # changed, then stable for one interval
                        self.reload("watch")
                        pending = None
                    else:
                        pending = fp
                for fn in extra or []:
                    fn()
            except Exception:  # the watcher must outlive any one failure
                log.exception("pack watcher iteration failed")


__all__ = ["PackState", "ReloadStatus", "PackLoadError", "fingerprint", "pack_set_id"]
