"""Helpers of the service tests: a real server on loopback, started as an operator starts it.

Each test module gets its own pack folder (copies of shipped packs), keys file, journal and
compiled-pack cache under tmp, so a test that reloads or breaks packs touches nothing shared.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ROOT / "regions"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLAIM_FILE = FIXTURES / "claim-20-lines.json"


def claim() -> dict:
    return json.loads(CLAIM_FILE.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_regions(root: Path, *keys: str) -> Path:
    """Copies of shipped packs ('000000/2024.1' …) under root/regions; all of them when no key is given."""
    regions = root / "regions"
    if not keys:
        shutil.copytree(REGIONS, regions, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        return regions
    for k in keys:
        shutil.copytree(REGIONS / k, regions / k)
    return regions


def make_keys(root: Path) -> tuple[Path, dict[str, str]]:
    """A keys file with a settle key, an admin key and a key holding both; returns the plain keys."""
    from rules_engine.service.auth import hash_key
    keys = {"settle": "rek_settle-" + "a" * 40, "admin": "rek_admin-" + "b" * 40, "both": "rek_both-" + "c" * 40}
    lines = [f"his settle {hash_key(keys['settle'])}", f"ops admin {hash_key(keys['admin'])}",
             f"lead settle,admin {hash_key(keys['both'])}"]
    path = root / "keys.txt"
    path.write_text("# test keys\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path, keys


@dataclass
class Server:
    root: Path
    regions: Path
    args: list[str] = field(default_factory=list)
    keys_file: Path | None = None
    journal: Path | None = None
    workers: int = 1
    port: int = 0
    proc: subprocess.Popen | None = None
    tls: Any = None  # an ssl.SSLContext trusting the server's certificate, when it serves TLS

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> "Server":
        for _ in range(3):
            self.port = free_port()
            cmd = [sys.executable, "-m", "rules_engine.cli", "serve", "--regions", str(self.regions), "--host",
                   "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
            if self.keys_file:
                cmd += ["--keys", str(self.keys_file)]
            if self.journal:
                cmd += ["--journal", str(self.journal)]
            cmd += self.args
            env = dict(os.environ, RULES_ENGINE_CACHE=str(self.root / "cache"), PYTHONUNBUFFERED="1")
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if httpx.get(self.url + "/readyz", timeout=1.0, verify=self.tls or True).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            log = self.log()
            self.stop()
            if "address already in use" not in log.lower():
                raise RuntimeError(f"server did not start:\n{log}")
        raise RuntimeError("no free port")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""




def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
