"""Canonical field paths, the policy error and the model base every section shares."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

# --- canonical field paths (shared with intake's mapping and the router's conditions) ----------
# The one list: intake builds exactly these fields, source mappings may fill only these, and
# routing conditions may test these (plus DERIVED_FIELDS).

UTM_FIELDS: tuple[str, ...] = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"
)  # fmt: skip
CANONICAL_FIELDS: frozenset[str] = frozenset(
    {
        "email", "phone", "first_name", "last_name", "title", "company", "company_domain",
        "website", "country", "message", "company_size", "industry", "demo_request",
        "pricing_page", "pages_viewed", "content_downloaded", "chat_message", "consent",
        "consent_wording", "consent_at", *UTM_FIELDS,
    }
)  # fmt: skip
# Known only once the router has scored the lead (qualification's outcome): routing rules may
# test them, scoring and disqualify rules may not (they would be testing their own result).
SCORED_FIELDS: frozenset[str] = frozenset(
    {"score", "fit", "intent", "tier", "stage", "framework_answered", "framework_complete"}
)
# Derived by intake (seniority, email_kind) or the router (account_owner: the rep owning the
# account the lead's business domain matched, absent otherwise; account_matched: whether it
# matched one; and the SCORED_FIELDS); conditions may test them, source mappings may not fill them.
DERIVED_FIELDS: frozenset[str] = frozenset(
    {"seniority", "email_kind", "source", "channel", "account_owner", "account_matched"}
    | SCORED_FIELDS
)
_OPEN_PREFIXES = ("answers.", "extra.")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_OPEN_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def is_canonical_path(path: str, *, derived: bool = False) -> bool:
    """Whether ``path`` names a lead field a mapping may fill (or a condition may test)."""
    if path in CANONICAL_FIELDS or (derived and path in DERIVED_FIELDS):
        return True
    prefix = next((p for p in _OPEN_PREFIXES if path.startswith(p)), None)
    return prefix is not None and bool(_OPEN_NAME.match(path[len(prefix) :]))


class PolicyError(Exception):
    """The policy file is unusable; the message names every offending field path."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "invalid-policy"

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("; ".join(self.errors))


def _at(subpath: str, message: str) -> PydanticCustomError:
    """An error a model validator attributes to one of its own fields (see ``_format_loc``)."""
    return PydanticCustomError("policy_field", "{detail}", {"subpath": subpath, "detail": message})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("use lower-case letters, digits, '-' and '_' only")
    return value


Name = Annotated[str, Field(min_length=1, max_length=64)]
