"""The routing policy file: sources, qualification, teams, routing rules, SLA and escalation.

Loaded once at start-up (and on reload) and validated completely, because a typo in a file sales
ops edit by hand must stop the service with the exact field at fault instead of silently routing
leads wrong. Every decision records ``Policy.version_id`` (the content hash), since the free-form
``version`` label is only as reliable as whoever remembered to bump it.

One module per section of the file; this package re-exports the names the services use.
"""

from shared.policy.activity import (
    ACTIVITY_FIELDS,
    OTHER_REASON,
    REASON_ACTIVITIES,
    ActivitySource,
    Feedback,
)
from shared.policy.base import (
    CANONICAL_FIELDS,
    DERIVED_FIELDS,
    SCORED_FIELDS,
    UTM_FIELDS,
    Name,
    PolicyError,
    is_canonical_path,
)
from shared.policy.conditions import (
    AllCondition,
    AnyCondition,
    Condition,
    ConditionValue,
    FieldCondition,
    NotCondition,
    Op,
    Scalar,
)
from shared.policy.escalation import EscalationLevel, Sla, SlaTier
from shared.policy.loader import _Loader, load_policy, parse_policy
from shared.policy.model import Policy
from shared.policy.people import (
    DAYS,
    Channels,
    EscalationChannels,
    Manager,
    NotifyChannel,
    NotifyPrefs,
    OutOfOffice,
    Person,
    PublicHolidays,
    Rep,
    Team,
    WeekHours,
    Window,
)
from shared.policy.qualification import (
    DisqualifyRule,
    Framework,
    Qualification,
    ScoreRule,
    Threshold,
)
from shared.policy.routing import Account, Dedupe, Nurture, Retention, RoutingRule, Strategy
from shared.policy.sources import Acknowledge, AuthConfig, ConsentConfig, RateLimit, SourceConfig

__all__ = [
    "ACTIVITY_FIELDS",
    "CANONICAL_FIELDS",
    "DAYS",
    "DERIVED_FIELDS",
    "OTHER_REASON",
    "REASON_ACTIVITIES",
    "SCORED_FIELDS",
    "UTM_FIELDS",
    "Account",
    "Acknowledge",
    "ActivitySource",
    "AllCondition",
    "AnyCondition",
    "AuthConfig",
    "Channels",
    "Condition",
    "ConditionValue",
    "ConsentConfig",
    "Dedupe",
    "DisqualifyRule",
    "EscalationChannels",
    "EscalationLevel",
    "Feedback",
    "FieldCondition",
    "Framework",
    "Manager",
    "Name",
    "NotCondition",
    "NotifyChannel",
    "NotifyPrefs",
    "Nurture",
    "Op",
    "OutOfOffice",
    "Person",
    "Policy",
    "PolicyError",
    "PublicHolidays",
    "Qualification",
    "RateLimit",
    "Rep",
    "Retention",
    "RoutingRule",
    "Scalar",
    "ScoreRule",
    "Sla",
    "SlaTier",
    "SourceConfig",
    "Strategy",
    "Team",
    "Threshold",
    "WeekHours",
    "Window",
    "_Loader",
    "is_canonical_path",
    "load_policy",
    "parse_policy",
]
