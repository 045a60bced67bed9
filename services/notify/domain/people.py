"""Which messages to people (the owner, the manager, the lead) one consumed event causes.

Pure: the event and the routing policy in, `Planned` messages out. Rendered now, so a policy
reload never changes a message already planned.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.notify.domain.messages import Planned
from shared.events import CloudEvent
from shared.policy import Policy


@dataclass(frozen=True)
class PeopleLinks:
    """What people messages need from notify's settings.

    `lead_url` is a format string with `{lead_id}` (a link to the lead in the admin API or the
    CRM); `default_from` is the sender address of e-mails to reps and managers."""

    lead_url: str
    default_from: str


def plan_people(event: CloudEvent, policy: Policy, *, links: PeopleLinks) -> list[Planned]:
    """The Slack and e-mail messages to people that `event` causes (none for other types)."""
    return []
