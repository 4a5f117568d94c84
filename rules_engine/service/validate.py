"""POST /v1/validate: check an uploaded pack against the packs being served.

The upload (a zip, or multipart files whose names carry their paths) may hold one pack or
several (a folder with pack.yaml each, anywhere in the upload). Each is placed at
`<region>/<version>/` beside hard links to the packs in force — so `extends: "000000"`
resolves, and date overlaps with the served versions are found — then the whole set is
loaded by the same `PackSet.load` the CLI's `validate` uses. Problems come back with file,
line and column *as named in the upload*; problems of the served packs are left out.

Nothing here touches the served folder: the set is assembled in a temporary folder that is
removed afterwards, and unpacking is bounded (file count, unpacked size, per-file size, no
absolute paths, no '..', no links) so that a zip bomb costs nothing.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..packs.registry import PackSet
from .config import Limits
from .problems import ProblemException

_REGION = re.compile(rb'^region:\s*["\']?([0-9]{6})["\']?\s*(?:#.*)?$', re.M)
_VERSION = re.compile(rb'^version:\s*["\']?([A-Za-z0-9][A-Za-z0-9._-]{0,39})["\']?\s*(?:#.*)?$', re.M)


def safe_name(name: str) -> str:
    """A relative POSIX path inside the upload, or a 400 problem."""
    n = name.replace("\\", "/")
    while n.startswith("./"):
        n = n[2:]
    p = PurePosixPath(n)
    if not n or n.startswith("/") or re.match(r"^[A-Za-z]:", n) or "\0" in n or any(
            part in ("..", "") for part in p.parts) or len(n) > 400:
        raise ProblemException("E-UPLOAD", f"file name {name[:100]!r} is not a relative path inside the pack")
    return str(p)


def files_from_zip(data: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as e:
        raise ProblemException("E-UPLOAD", f"not a zip file: {e}") from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_upload_files:
        raise ProblemException("E-LIMIT-BODY", f"{len(infos):,} files in the zip; at most {limits.max_upload_files:,}")
    total = 0
    out: list[tuple[str, bytes]] = []
    for info in infos:
        mode = (info.external_attr >> 16) & 0o170000
        if mode and mode not in (stat.S_IFREG,):
            raise ProblemException("E-UPLOAD", f"{info.filename!r} is not a regular file (links are not accepted)")
        name = safe_name(info.filename)
        if PurePosixPath(name).parts[0] == "__MACOSX":
            continue
        budget = limits.max_upload_unpacked_bytes - total
        if info.file_size > budget:
            raise ProblemException("E-LIMIT-BODY", f"the zip unpacks to more than {limits.max_upload_unpacked_bytes:,} "
                                   "bytes")
        try:
            with zf.open(info) as f:
                content = f.read(budget + 1)  # the declared size may lie: read at most the budget
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as e:
            raise ProblemException("E-UPLOAD", f"cannot unpack {name}: {e}") from None
        if len(content) > budget:
            raise ProblemException("E-LIMIT-BODY", f"the zip unpacks to more than {limits.max_upload_unpacked_bytes:,} "
                                   "bytes")
        total += len(content)
        out.append((name, content))
    return out


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def validate_upload(files: list[tuple[str, bytes]], served: PackSet, *, cache_dir: Path | None,
                    tmp_parent: str | None = None) -> dict[str, Any]:
    names = {n for n, _ in files}
    if len(names) != len(files):
        raise ProblemException("E-UPLOAD", "the upload names one file twice")
    roots = sorted({str(PurePosixPath(n).parent) for n in names if PurePosixPath(n).name == "pack.yaml"})
    if not roots:
        raise ProblemException("E-UPLOAD-NO-PACK", "the upload holds no pack.yaml (a pack is a folder with pack.yaml, "
                               "policy.yaml …)")
    content = dict(files)
    tmp = Path(tempfile.mkdtemp(prefix="validate-", dir=tmp_parent))
    try:
        placed: dict[str, str] = {}   # folder in tmp (relative) → folder in the upload
        keys: set[str] = set()
        for i, root in enumerate(roots):
            meta = content[f"{root}/pack.yaml" if root != "." else "pack.yaml"]
            m_r, m_v = _REGION.search(meta), _VERSION.search(meta)
            region = m_r.group(1).decode() if m_r else f"upload{i}"
            version = m_v.group(1).decode() if m_v else "unknown"
            rel = f"{region}/{version}"
            if rel in placed:
                raise ProblemException("E-UPLOAD", f"two packs in the upload are both {region}@{version}")
            placed[rel] = "" if root == "." else root + "/"
            keys.add(f"{region}@{version}")
            nested = [r for r in roots if r != root and (root == "." or r.startswith(root + "/"))]
            for name, data in files:
                if root != "." and not name.startswith(root + "/"):
                    continue
                sub = name if root == "." else name[len(root) + 1:]
                if any(name == r2 or name.startswith(r2 + "/") for r2 in nested):
                    continue  # belongs to a pack nested inside this one
                dst = tmp / rel / sub
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(data)
        for raw in served.raws.values():
            rel = f"{raw.region}/{raw.version}"
            if rel in placed or not Path(raw.dir).is_dir():
                continue
            shutil.copytree(raw.dir, tmp / rel, copy_function=_link_or_copy,
                            ignore=shutil.ignore_patterns(".*"))
        ps = PackSet.load(tmp, cache_dir=cache_dir, base=tmp)

        def upload_path(file: str) -> str | None:
            f = file.replace("\\", "/")
            for rel, orig in placed.items():
                if f == rel or f.startswith(rel + "/"):
                    return orig + f[len(rel) + 1:] if f != rel else orig.rstrip("/") or "."
            return None

        problems = []
        for p in ps.problems.sorted():
            where = upload_path(p.file)
            if where is None and not any(k in p.message for k in keys):
                continue  # a problem of a served pack, not of the upload
            d = p.to_dict()
            d["file"] = where if where is not None else p.file
            d["location"] = f"{d['file']}:{p.line}:{p.col}" if p.line else d["file"]
            problems.append(d)
        packs = []
        for rel, orig in placed.items():
            region, version = rel.split("/", 1)
            compiled = [p for k, p in ps.compiled.items() if k[-1] == f"{region}@{version}"]
            packs.append({"key": f"{region}@{version}", "folder": orig.rstrip("/") or ".", "compiled": bool(compiled),
                          "hashes": sorted({p.content_hash for p in compiled}),
                          "chains": [list(p.chain) for p in compiled]})
        errors = sum(1 for p in problems if p["severity"] == "error")
        return {"ok": errors == 0 and all(p["compiled"] for p in packs), "errors": errors,
                "warnings": sum(1 for p in problems if p["severity"] == "warning"), "packs": packs,
                "problems": problems}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
