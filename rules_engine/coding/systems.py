"""Which code systems a request means: `clinical-2.0`, `insurance-2.0` or a full id `icd10:clinical-2.0`.

Why here: the command line and the service both name editions the short way and must read them
the same way — the family from a full id, else from an edition only one family has, else from the
first code itself.
"""
from __future__ import annotations

from typing import Any

from . import codes as C


class UnknownSystem(ValueError):
    """`which` ("from" / "to") names `name`, which is no code system of the pack."""

    def __init__(self, which: str, name: str, known: list[str]):
        self.which, self.name, self.known = which, name, known
        super().__init__(f"'{name}' is not a code system of the pack (systems: {', '.join(known) or 'none'})")


def resolve_systems(coding: Any, from_: str, to: str, family: str = "auto",
                    sample: list[str] | None = None) -> tuple[str, str]:
    """(source id, target id) such as ('icd10:clinical-2.0', 'icd10:insurance-2.0')."""
    fam = None if family == "auto" else family
    for name in (from_, to):
        if fam is None and ":" in name:
            fam = name.partition(":")[0]
    if fam is None:  # an edition only one family has decides it
        for name in (from_, to):
            sid = coding.system_id(name)
            if sid:
                fam = sid.partition(":")[0]
                break
    if fam is None and sample:
        fam = C.guess_family(sample[0])
    out = []
    for which, name in (("from", from_), ("to", to)):
        sid = coding.system_id(name, fam)
        if sid is None:
            raise UnknownSystem(which, name, sorted(coding.systems))
        out.append(sid)
    return out[0], out[1]
