"""What sales tell followup about how a lead turned out: reason codes on rejections and
disqualifications, and the metrics counted once per lead rather than per assignment
(handoffs and stage changes by stage, conversions by stage, speed-to-lead from the first
assignment). A mixin of `FollowupService` (the same policy and metrics)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import store
from services.followup.metrics import FollowupMetrics
from shared.errors import DomainError
from shared.events import LeadActivity, LeadAssigned
from shared.logs import get_logger
from shared.policy import OTHER_REASON, REASON_ACTIVITIES, Policy

log = get_logger(__name__)


class InvalidActivity(DomainError):
    """Breaks the activity contract; on Kafka the consumer dead-letters it with this message."""

    status = 422
    type_slug = "invalid-activity"
    title = "Invalid activity"


class Outcomes:
    policy: Policy
    metrics: FollowupMetrics

    # --- reason codes ---------------------------------------------------------------------

    def check_reason(self, activity: LeadActivity) -> None:
        """HTTP and activity webhooks: a rejection or disqualification names a reason code
        from the policy's `feedback.reasons` (422 naming `reason` otherwise)."""
        feedback = self.policy.feedback
        if feedback is None or activity.type not in REASON_ACTIVITIES:
            return
        if not feedback.accepts(activity.reason):
            codes = ", ".join((*feedback.reasons, OTHER_REASON))
            problem = "required" if activity.reason is None else "not a reason code"
            raise InvalidActivity(
                f"{activity.type} needs a reason code",
                fields=[
                    {"name": "reason", "message": f"{problem} for {activity.type}: one of {codes}"}
                ],
            )

    def _reason_code(self, activity: LeadActivity) -> str | None:
        """The reason stored: on Kafka (which cannot refuse an event) a rejection or
        disqualification without a code from the list is kept as `other`."""
        feedback = self.policy.feedback
        if feedback is None or activity.type not in REASON_ACTIVITIES:
            return activity.reason
        if feedback.accepts(activity.reason):
            return activity.reason
        log.info("followup.reason_unlisted", lead_id=activity.lead_id, type=activity.type)
        return OTHER_REASON

    def _count_reason(self, activity: LeadActivity, reason: str | None) -> None:
        if activity.type in REASON_ACTIVITIES and self.policy.feedback is not None:
            self.metrics.lost_reasons.labels(activity.type, str(reason)).inc()

    # --- once per lead ----------------------------------------------------------------------

    def _count_stage(self, event: LeadAssigned, previous: str | None) -> None:
        """Handoffs by stage (a lead's first assignment) and stage changes on a later one (an
        MQL handed to sales as an SQL after a new touch: MQL -> SQL conversion)."""
        if event.assignment_seq == 1:
            self.metrics.handoffs.labels(event.stage).inc()
        elif previous is not None and previous != event.stage:
            self.metrics.stage_changes.labels(previous, event.stage).inc()

    async def _count_per_lead(
        self, session: AsyncSession, *, clock: store.ClockRow, activity_type: str, at: datetime
    ) -> None:
        """Metrics once per lead, not per assignment: speed-to-lead from the lead's FIRST
        assignment to its first contact (whoever made it), and conversions by the stage the
        lead was handed off at (MQL -> SQL conversion)."""
        first, first_assigned = await store.first_of_its_type(
            session, lead_id=clock.lead_id, type=activity_type, at=at
        )
        if not first:
            return
        if activity_type == "converted":
            self.metrics.conversions.labels(clock.stage or "unknown").inc()
        elif first_assigned is not None:
            self.metrics.speed_to_lead_first.labels(clock.tier).observe(
                max(0.0, (at - first_assigned).total_seconds())
            )
