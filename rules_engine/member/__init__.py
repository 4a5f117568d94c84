"""Member services for internet clinics and enterprise IM (docs/member.md): insurance, eligibility,
chronic-disease and year-to-date queries with our own estimate of what remains; cross-region filings
that change the settlement; 医保电子凭证 payment; consent on record in the hash-chained journal.

    from rules_engine.member import MemberService, require_member_settings
    svc = MemberService.from_settings(require_member_settings("member.yaml"))
"""
from __future__ import annotations

from .consent import Consent, ConsentRegistry
from .errors import MemberError
from .service import MemberService
from .settings import MemberSettings, load_member_settings, parse_member_settings, require_member_settings

__all__ = ["Consent", "ConsentRegistry", "MemberError", "MemberService", "MemberSettings", "load_member_settings",
           "parse_member_settings", "require_member_settings"]
