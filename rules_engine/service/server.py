"""Starting the service: checks first, then uvicorn with one worker or several.

Everything that can be wrong with the settings is found before a port is opened: the keys
file, the packs (every problem listed, exit 1), the journal and its masking key. Then:

- one worker: the app built for the checks is served as it is;
- N workers: uvicorn's supervisor starts N processes that build the app from
  RULES_ENGINE_SERVICE_CONFIG (compiled packs come from the cache the checks just filled),
  restarts any that die, and shares one socket. A runtime folder holds the reload
  generation file and Prometheus' multiprocess files; it is made fresh at start.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import ENV_CONFIG, ServiceConfig

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never blocks the caller: when the log sink is stuck (a full pipe, a slow disk) and the queue
    is full, records are dropped and counted — a request is never held up by its log line."""

    dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


_listener: logging.handlers.QueueListener | None = None


def configure_logging(level: str = "info") -> None:
    """Service and uvicorn loggers to stderr through a queue and a writer thread (see above);
    SIGUSR1 dumps every thread's stack (faulthandler), to see where a worker is without stopping it."""
    global _listener
    import faulthandler
    import signal
    if hasattr(signal, "SIGUSR1"):
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (ValueError, RuntimeError):  # not the main thread, or not supported here
            pass
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _listener is not None:
        return
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    q: queue.Queue = queue.Queue(maxsize=10_000)
    root.addHandler(_DroppingQueueHandler(q))
    _listener = logging.handlers.QueueListener(q, out, respect_handler_level=False)
    _listener.start()
    import atexit
    atexit.register(_listener.stop)


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    access_log: bool = False
    log_level: str = "info"


class StartError(Exception):
    """Settings or packs that stop the service from starting; `exit_code` says which kind."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def preflight(config: ServiceConfig) -> None:
    """Raise StartError for anything that would make a worker fail at start."""
    from ..api import Engine, PackLoadError
    from .auth import KeyFileError, KeyStore
    if config.keys_file:
        try:
            n = len(KeyStore.load(config.keys_file))
        except KeyFileError as e:
            raise StartError(str(e), 2) from None
        if n == 0:
            raise StartError(f"{config.keys_file}: no keys in the file", 2)
    if not Path(config.regions).is_dir():
        raise StartError(f"no such directory: {config.regions} (use --regions DIR)", 2)
    try:
        Engine.from_directory(config.regions, cache=config.cache)
    except PackLoadError as e:
        errors = [p for p in e.problems if p.severity == "error"]
        lines = [f"the packs under {config.regions} have {len(errors)} error(s); run 'rules-engine validate "
                 f"{config.regions}':"] + [p.format(with_source=False) for p in errors[:20]]
        raise StartError("\n".join(lines), 1) from None
    if config.journal:
        from ..commands.journal import read_key_file
        from ..journal import Journal, JournalError
        try:
            with Journal(config.journal, mask_key=read_key_file(config.journal_key_file) if config.journal_key_file
                         else None, retention_days=config.journal_retention_days) as j:
                j._check_writable()
        except JournalError as e:
            raise StartError(f"journal {config.journal}: {e.message}", 1) from None


def serve(config: ServiceConfig, opts: ServeOptions) -> None:
    import uvicorn
    configure_logging(opts.log_level)
    config.log_level = opts.log_level
    log = logging.getLogger("rules_engine.service")
    own_runtime = config.runtime_dir is None
    runtime = Path(config.runtime_dir or tempfile.mkdtemp(prefix="rules-engine-"))
    runtime.mkdir(parents=True, exist_ok=True)
    config.runtime_dir = str(runtime)
    try:
        preflight(config)
        kw = dict(host=opts.host, port=opts.port, ssl_certfile=opts.ssl_certfile, ssl_keyfile=opts.ssl_keyfile,
                  ssl_keyfile_password=opts.ssl_keyfile_password, access_log=opts.access_log, log_config=None,
                  log_level=opts.log_level, server_header=False, timeout_graceful_shutdown=10)
        scheme = "https" if opts.ssl_certfile else "http"
        log.info("serving %s on %s://%s:%d with %d worker(s)%s%s", config.regions, scheme, opts.host, opts.port,
                 opts.workers, f", decision log {config.journal}" if config.journal else "",
                 "" if config.keys_file else ", NO API KEYS (loopback only)")
        if opts.workers <= 1:
            from .app import create_app
            uvicorn.run(create_app(config), **kw)
        else:
            prom = runtime / "prometheus"
            shutil.rmtree(prom, ignore_errors=True)
            prom.mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
            os.environ[ENV_CONFIG] = config.to_json()
            uvicorn.run("rules_engine.service.app:app_from_env", factory=True, workers=opts.workers, **kw)
    finally:
        if own_runtime:
            shutil.rmtree(runtime, ignore_errors=True)
