"""Errors as RFC 9457 problem details (`application/problem+json`).

    {"type": "/problems/E-CLAIM-VALUE", "title": "The claim has invalid fields", "status": 422,
     "detail": "the claim has 1 problem: age: 'age' 200 is not a plausible age",
     "code": "E-CLAIM-VALUE", "errors": [{"path": "age", "code": "E-CLAIM-VALUE", "message": "…"}],
     "request_id": "…"}

`code` is the same code the CLI and the Python API give (E-CLAIM-…, E-NO-PACK-…), `errors`
carries each field path. `type` resolves to a page of this service describing the code.
"""
from __future__ import annotations

from typing import Any, Iterable

from starlette.responses import Response


PROBLEM_JSON = "application/problem+json"

#: code → (HTTP status, title). Codes of the engine not listed here default by prefix.
CODES: dict[str, tuple[int, str]] = {
    "E-CLAIM": (422, "The claim cannot be settled"),
    "E-CLAIM-JSON": (400, "The body is not valid JSON"),
    "E-CLAIM-TYPE": (422, "The claim has a field of the wrong type"),
    "E-CLAIM-VALUE": (422, "The claim has an invalid value"),
    "E-CLAIM-MISSING": (422, "The claim lacks a required field"),
    "E-CLAIM-UNKNOWN-FIELD": (422, "The claim has an unknown field"),
    "E-CLAIM-AMOUNT": (422, "A fee line's amount is not cnt × pric"),
    "E-CLAIM-DUPLICATE-SN": (422, "Two fee lines share a feedetl_sn"),
    "E-NO-PACK": (422, "No rule pack for the claim's region and date"),
    "E-NO-PACK-ON-DATE": (422, "No pack of the region is in force on that date"),
    "E-UNKNOWN-REGION": (422, "No pack for that region"),
    "E-PACK-INVALID": (422, "The pack for that region and date did not compile"),
    "E-DATE": (400, "Not a date YYYY-MM-DD"),
    "E-REQUEST": (400, "A bad request parameter"),
    "E-MEDIA-TYPE": (415, "Unsupported media type"),
    "E-LIMIT-BODY": (413, "The body is too large"),
    "E-LIMIT-BATCH": (413, "Too many claims in one batch"),
    "E-LIMIT-LINES": (413, "Too many fee lines in one claim"),
    "E-LIMIT-DEPTH": (400, "The JSON is nested too deeply"),
    "E-LIMIT-TIMEOUT": (408, "The body arrived too slowly"),
    "E-LIMIT-BUSY": (429, "The service is at its concurrency limit; retry shortly"),
    "E-UPLOAD": (400, "The upload cannot be read"),
    "E-UPLOAD-NO-PACK": (422, "The upload holds no pack.yaml"),
    "E-AUTH-MISSING": (401, "An API key is required"),
    "E-AUTH-INVALID": (401, "The API key is not valid"),
    "E-AUTH-ROLE": (403, "The API key's role does not allow this"),
    "E-NOT-FOUND": (404, "No such resource"),
    "E-METHOD": (405, "Method not allowed"),
    "E-JOURNAL": (503, "The decision log cannot be written; nothing was settled"),
    "E-NOT-READY": (503, "No valid packs are loaded"),
    "E-INTERNAL": (500, "Internal error (a bug: please report it with the request id)"),
}


def status_for(code: str) -> tuple[int, str]:
    if code in CODES:
        return CODES[code]
    for prefix in ("E-CLAIM", "E-NO-PACK", "E-LIMIT", "E-AUTH", "E-UPLOAD", "E-JOURNAL"):
        if code.startswith(prefix) and prefix in CODES:
            return CODES[prefix]
    if code.startswith("E-"):
        return 422, "The request cannot be processed"
    return 500, CODES["E-INTERNAL"][1]


class ProblemException(Exception):
    """Raise anywhere in a request; the app answers with the problem document."""

    def __init__(self, code: str, detail: str, *, errors: Iterable[dict] | None = None, status: int | None = None,
                 title: str | None = None, headers: dict[str, str] | None = None, extra: dict | None = None):
        super().__init__(detail)
        st, ti = status_for(code)
        self.code = code
        self.status = status or st
        self.title = title or ti
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = headers or {}
        self.extra = extra or {}

    def document(self, request_id: str | None = None, instance: str | None = None) -> dict[str, Any]:
        return problem_document(self.code, self.detail, status=self.status, title=self.title, errors=self.errors,
                                request_id=request_id, instance=instance, extra=self.extra)


def problem_document(code: str, detail: str, *, status: int | None = None, title: str | None = None,
                     errors: Iterable[dict] | None = None, request_id: str | None = None,
                     instance: str | None = None, extra: dict | None = None) -> dict[str, Any]:
    st, ti = status_for(code)
    doc: dict[str, Any] = {"type": f"/problems/{code}", "title": title or ti, "status": status or st,
                           "detail": detail, "code": code}
    if instance:
        doc["instance"] = instance
    errs = list(errors or [])
    if errs:
        doc["errors"] = errs
    if request_id:
        doc["request_id"] = request_id
    if extra:
        doc.update(extra)
    return doc


def problem_response(doc: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    from .jsonout import dumps  # falls back to \u escapes for text that UTF-8 cannot carry
    return Response(dumps(doc), status_code=int(doc["status"]), media_type=PROBLEM_JSON, headers=headers)


def from_settlement_error(e: Any) -> ProblemException:
    """A `SettlementError` (ClaimError, PackNotFound …) with its code and field errors, unchanged."""
    errors = [x.to_dict() for x in getattr(e, "errors", [])]
    return ProblemException(e.code, e.message, errors=errors)
