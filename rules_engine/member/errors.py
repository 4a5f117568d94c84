"""Refusals of the member service: one exception with a stable code, an HTTP status, and the located
field errors (`path`, `code`, `message`) — the same shape the engine's claim errors have, so the
service turns them into problem+json unchanged and the CLI prints them with their paths."""
from __future__ import annotations

from typing import Any

#: code → (HTTP status, title)
CODES: dict[str, tuple[int, str]] = {
    "E-CONSENT-MISSING": (403, "No consent on record for this person, purpose and data"),
    "E-CONSENT-WITHDRAWN": (403, "The consent was withdrawn"),
    "E-CONSENT-EXPIRED": (403, "The consent is no longer (or not yet) in force"),
    "E-CONSENT-SCOPE": (403, "The consent on record does not cover this data or purpose"),
    "E-CONSENT-INVALID": (422, "The consent cannot be recorded (field errors listed)"),
    "E-CONSENT-UNKNOWN": (404, "No such consent"),
    "E-CONSENT-STATE": (409, "The consent is already withdrawn"),
    "E-MEMBER-REQUEST": (422, "The request has invalid fields (listed)"),
    "E-MEMBER-REGION": (422, "Unknown region"),
    "E-MEMBER-PLATFORM": (422, "The platform refused the request"),
    "E-MEMBER-UNKNOWN": (504, "The platform's answer did not arrive or cannot be trusted"),
    "E-FILING-INVALID": (422, "The filing cannot be made (field errors listed)"),
    "E-FILING-OVERLAP": (422, "The filing overlaps another filing of the same type"),
    "E-FILING-UNKNOWN": (404, "No such filing for this person"),
    "E-FILING-STATE": (409, "The filing is already revoked"),
    "E-FILING-REVOKED": (422, "The claim names a revoked filing"),
    "E-EVOUCHER-SIGNATURE": (403, "The e-voucher message's signature does not verify"),
    "E-EVOUCHER-INVALID": (422, "The e-voucher request or callback has invalid fields"),
    "E-EVOUCHER-STATE": (409, "The e-voucher order is not in a state that allows this"),
    "E-EVOUCHER-UNKNOWN-ORDER": (404, "No such e-voucher order"),
    "E-EVOUCHER-PENDING": (409, "The order's last payment outcome is unknown and could not be resolved yet"),
    "E-EVOUCHER-ALREADY-PAID": (409, "This visit is already paid by e-voucher"),
    "E-EVOUCHER-REFUSED": (422, "The payment platform refused"),
    "E-JOURNAL": (503, "The journal cannot be written; nothing was answered"),
}


class MemberError(Exception):
    """A refusal: `code`, `message`, HTTP `status`, field `errors`. Nothing was recorded or sent
    unless the message says otherwise."""

    def __init__(self, code: str, message: str, *, errors: list[dict] | None = None, status: int | None = None,
                 **info: Any):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or CODES.get(code, (422, ""))[0]
        self.title = CODES.get(code, (422, "The request cannot be processed"))[1]
        self.errors = list(errors or [])
        self.info = info

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.errors:
            d["errors"] = self.errors
        if self.info:
            d.update({k: v for k, v in self.info.items() if isinstance(v, (str, int, float, bool, type(None)))})
        return d


def field_error(path: str, code: str, message: str) -> dict[str, str]:
    return {"path": path, "code": code, "message": message}


def invalid(code: str, errors: list[dict], what: str = "the request") -> MemberError:
    n = len(errors)
    first = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:3])
    return MemberError(code, f"{what} has {n} problem{'s' if n != 1 else ''}: {first}", errors=errors)
