"""Several processes (uvicorn workers, a gateway, a CLI) appending to one journal at once."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

from rules_engine.journal import Journal

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import sys, threading
    from rules_engine.journal import Journal
    path, name, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    j = Journal(path)
    def run(t):
        for i in range(n):
            j.append("test.write", {"writer": name, "thread": t, "i": i}, keys={"request_id": f"{name}-{t}-{i}"})
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    [x.start() for x in ts]
    [x.join() for x in ts]
    j.close()
""")


def test_two_processes_append_concurrently_into_one_chain(tmp_path):
    path = tmp_path / "shared.journal"
    Journal(path).close()  # created first, as `rules-engine serve` does before its workers start
    n, threads = 150, 4
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(n), str(threads)], cwd=str(ROOT),
                              stderr=subprocess.PIPE) for name in ("A", "B")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Journal(path, create=False) as j:
        r = j.verify()
        assert r.ok, r.problems
        total = 2 * n * threads
        assert r.entries == total and (r.first_seq, r.last_seq) == (1, total), "no seq lost or repeated"
        order: dict[tuple, list[int]] = defaultdict(list)
        writers = set()
        for e in j.entries():
            order[(e.payload["writer"], e.payload["thread"])].append(e.payload["i"])
            writers.add(e.payload["writer"])
        assert writers == {"A", "B"}
        assert all(v == list(range(n)) for v in order.values()), "each writer's entries in the order it wrote them"
        assert len(j.find(request_id="B-3-77")) == 1
