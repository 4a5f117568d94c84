"""The service's own response shapes, for the OpenAPI document.

A claim in and a settlement out are the engine's models (`rules_engine.model.claim.Claim`,
`rules_engine.model.settlement.SettlementOut`): the service adds only envelopes around them.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..model.settlement import SettlementOut


class FieldErrorOut(BaseModel):
    path: str = Field(description="where in the request: feedetail[3].pric, insuplc_admdvs …")
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the engine's error code and the field paths."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="/problems/{code}: a page describing the code")
    title: str
    status: int
    detail: str
    code: str = Field(description="the same code as the CLI and the Python API: E-CLAIM, E-NO-PACK-ON-DATE …")
    instance: str | None = None
    errors: list[FieldErrorOut] | None = None
    request_id: str | None = None


class BatchItem(BaseModel):
    index: int = Field(description="position of the claim in the request (0-based)")
    status: int = Field(description="200 settled, else the problem's status")
    settlement: SettlementOut | None = None
    problem: Problem | None = None
    decision_seq: int | None = Field(default=None, description="the decision-log entry (when a journal is kept)")


class BatchOut(BaseModel):
    results: list[BatchItem]
    settled: int
    refused: int
    pack_set: str = Field(description="sha256 naming the whole pack set the batch was settled with")


class PackSummary(BaseModel):
    region: str
    name: str
    version: str
    effective_from: str
    effective_to: str | None
    select_by: str
    chain: list[str] = Field(description="region@version from the root ancestor to this pack")
    hash: str = Field(description="content hash (sha256) of the effective pack")
    confidence: str | None = None
    layers: int
    catalogue: dict[str, int]


class PacksOut(BaseModel):
    pack_set: str
    loaded_at: str
    packs: list[PackSummary]


class PackOut(BaseModel):
    pack: PackSummary
    document: dict[str, Any] = Field(description="the effective pack as `rules-engine show` prints it")


class ValidateProblem(BaseModel):
    file: str
    line: int
    col: int
    location: str = Field(description="file:line:col")
    severity: str
    code: str
    message: str
    path: str | None = None
    hint: str | None = None


class ValidatePack(BaseModel):
    key: str
    folder: str
    compiled: bool
    hashes: list[str]
    chains: list[list[str]]


class ValidateOut(BaseModel):
    ok: bool
    errors: int
    warnings: int
    packs: list[ValidatePack]
    problems: list[ValidateProblem]


class ReloadInfo(BaseModel):
    ok: bool
    at: str
    trigger: str = Field(description="start, watch, admin or peer (another worker's admin reload)")
    errors: int
    problems: list[dict[str, Any]]


class ReloadOut(BaseModel):
    ok: bool
    pack_set: str
    packs: list[str]
    reload: ReloadInfo


class ReadyOut(BaseModel):
    status: str = Field(description="ready, or stale: serving the previous packs because the newest failed validation")
    pack_set: str
    packs: list[str]
    loaded_at: str
    last_reload: ReloadInfo
    journal: dict[str, Any] | None = None


class HealthOut(BaseModel):
    status: str
