"""Teams and reps: working hours, out of office, capacity and how each is notified."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date, datetime, time
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public_holidays
from pydantic import (
    AfterValidator,
    AwareDatetime,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from shared.business_hours import END_OF_DAY, DaysOff, Schedule, TimeOff, WorkingHours
from shared.policy.base import Name, _at, _check_name, _Model
from shared.policy.sources import _EMAIL

# --- teams and reps --------------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
Window = tuple[time, time]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_time(raw: Any, *, end: bool) -> time:
    if not isinstance(raw, str):
        raise ValueError('times are quoted "HH:MM" strings')
    if end and raw == "24:00":
        return END_OF_DAY
    m = _HHMM.match(raw)
    if not m:
        raise ValueError(f"'{raw}' is not a time \"HH:MM\"")
    return time(int(m.group(1)), int(m.group(2)))


def _parse_windows(raw: Any) -> tuple[Window, ...]:
    """``["09:00","17:30"]`` or a list of such pairs -> sorted, non-overlapping windows."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ValueError('expected ["HH:MM", "HH:MM"] or a list of such pairs')
    pairs = [raw] if raw and not any(isinstance(x, list | tuple) for x in raw) else list(raw)
    windows: list[Window] = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError('expected ["HH:MM", "HH:MM"] or a list of such pairs')
        start, stop = _parse_time(pair[0], end=False), _parse_time(pair[1], end=True)
        if stop <= start:
            raise ValueError("end must be after start")
        windows.append((start, stop))
    windows.sort()
    for (_, prev_end), (start, _) in pairwise(windows):
        if start < prev_end:
            raise ValueError("windows overlap")
    return tuple(windows)


class WeekHours(_Model):
    """Working windows per weekday in the rep's local time; an absent day is a day off."""

    mon: tuple[Window, ...] = ()
    tue: tuple[Window, ...] = ()
    wed: tuple[Window, ...] = ()
    thu: tuple[Window, ...] = ()
    fri: tuple[Window, ...] = ()
    sat: tuple[Window, ...] = ()
    sun: tuple[Window, ...] = ()

    _windows = field_validator(*DAYS, mode="before")(_parse_windows)

    def as_mapping(self) -> dict[int, tuple[Window, ...]]:
        return {i: getattr(self, day) for i, day in enumerate(DAYS) if getattr(self, day)}


NotifyChannel = Literal["slack", "email", "team_channel"]


def _check_unique(v: tuple[str, ...]) -> tuple[str, ...]:
    for name in v:
        if v.count(name) > 1:
            raise ValueError(f"'{name}' is listed twice")
    return v


Channels = Annotated[tuple[NotifyChannel, ...], Field(min_length=1), AfterValidator(_check_unique)]
"""Where a message to a person goes: `slack` (a direct message, needs their slack_user_id),
`email`, `team_channel` (a post in the team's slack_channel naming them)."""


def _check_slack_user(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"[UW][A-Z0-9]{2,30}", v):
        raise ValueError(f"'{v}' is not a Slack member id like U0123ABCD")
    return v


def _levels_or_list(v: Any) -> str | None:
    if isinstance(v, list | tuple):
        return "<every-level>"
    if isinstance(v, dict):
        return "<by-level>"
    return None


EscalationChannels = Annotated[
    Annotated[Channels, Tag("<every-level>")] | Annotated[dict[int, Channels], Tag("<by-level>")],
    Discriminator(
        _levels_or_list,
        custom_error_type="escalation_channels",
        custom_error_message="a list of channels for every level, or {level: [channels]}",
    ),
]


class NotifyPrefs(_Model):
    """Which channels tell people about leads. `assignment`: the owner of a new or reassigned
    lead (and, on a reassignment, the previous owner). `escalation`: the owner and, for
    notify_manager, the manager; one list for every level or one per level. Unset keys fall
    back to the wider scope (rep -> team -> the escalation level's `channels` -> e-mail)."""

    assignment: Channels | None = None
    escalation: EscalationChannels | None = None

    def for_level(self, level: int) -> tuple[str, ...] | None:
        esc = self.escalation
        return esc.get(level) if isinstance(esc, dict) else esc

    def mentions(self, channel: str) -> bool:
        lists = [self.assignment or ()]
        esc = self.escalation
        lists += list(esc.values()) if isinstance(esc, dict) else [esc or ()]
        return any(channel in chans for chans in lists)


class Person(_Model):
    name: str = Field(min_length=1)
    email: str = Field(pattern=_EMAIL)


class Manager(Person):
    slack_user_id: str | None = None

    _slack = field_validator("slack_user_id")(_check_slack_user)


class OutOfOffice(_Model):
    from_: AwareDatetime = Field(alias="from")
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.until <= self.from_:
            raise _at("until", "must be after from")
        return self


class PublicHolidays(_Model):
    """The public holidays a rep does not work on, from the `holidays` library's calendars
    (ISO 3166-1 country, optional ISO 3166-2 subdivision: DE + BY, US + CA)."""

    country: str = Field(pattern=r"^[A-Z]{2}$")
    subdivision: str | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _known(self) -> PublicHolidays:
        try:
            self.calendar()
        except NotImplementedError:
            if (
                self.subdivision is None
                or self.country not in public_holidays.list_supported_countries()
            ):
                raise _at("country", f"no public holidays known for '{self.country}'") from None
            raise _at(
                "subdivision", f"'{self.subdivision}' is not a subdivision of {self.country}"
            ) from None
        return self

    def calendar(self) -> public_holidays.HolidayBase:
        """The calendar (it fills in each year as dates of that year are asked about)."""
        return public_holidays.country_holidays(self.country, subdiv=self.subdivision)


class Rep(_Model):
    id: Name
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    manager_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    timezone: str
    working_hours: WeekHours
    weight: int = Field(default=1, ge=1)
    capacity: int = Field(ge=1)
    territories: tuple[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], ...] = ()
    active: bool = True
    out_of_office: tuple[OutOfOffice, ...] = ()
    holidays: PublicHolidays | None = None
    slack_user_id: str | None = None
    notify: NotifyPrefs = Field(default_factory=NotifyPrefs)
    # None: the team's `reassign_on_out_of_office`
    reassign_on_out_of_office: bool | None = None

    _company_holidays: frozenset[date] = PrivateAttr(default=frozenset())

    _id = field_validator("id")(_check_name)
    _slack = field_validator("slack_user_id")(_check_slack_user)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}'") from None
        return v

    @field_validator("working_hours")
    @classmethod
    def _some_hours(cls, v: WeekHours) -> WeekHours:
        # Business-clock SLAs and require_working_hours rules need at least some working time.
        if not v.as_mapping():
            raise ValueError("at least one working day is required")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours(self) -> WorkingHours:
        return self.working_hours.as_mapping()

    def schedule(self) -> Schedule:
        """Working hours bound to the rep's zone and time off (public holidays, the company's
        holidays, out of office), for SLA deadlines and working-time checks."""
        return self._schedule

    @functools.cached_property
    def _schedule(self) -> Schedule:
        # Built once per policy (the policy is immutable); a holidays calendar is not cheap.
        calendars = [self.holidays.calendar()] if self.holidays else []
        off = TimeOff(
            days=DaysOff(self._company_holidays, calendars),
            periods=tuple((o.from_, o.until) for o in self.out_of_office),
        )
        return Schedule(self.hours(), self.zone, off)

    def is_out_of_office(self, at: datetime) -> bool:
        return any(o.from_ <= at < o.until for o in self.out_of_office)


class Team(_Model):
    id: Name
    name: str = Field(min_length=1)
    manager: Manager
    reps: tuple[Rep, ...] = Field(min_length=1)
    slack_channel: str | None = None
    notify: NotifyPrefs = Field(default_factory=NotifyPrefs)
    # A rep who misses this many SLAs in a row (level-1 escalations) is paused for new leads
    # until they act or a manager resumes them; None: never paused.
    pause_after_missed_slas: int | None = Field(default=None, ge=1)
    # An out-of-office period starting reassigns the rep's leads nobody has contacted yet.
    reassign_on_out_of_office: bool = False

    _id = field_validator("id")(_check_name)

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[CG][A-Z0-9]{2,30}|#[a-z0-9][a-z0-9_-]{0,79}", v):
            raise ValueError(
                f"'{v}' is not a Slack channel id like C0123ABCD or a name like #leads"
            )
        return v

    def rep(self, rep_id: str) -> Rep | None:
        return next((r for r in self.reps if r.id == rep_id), None)

    def manager_email_for(self, rep: Rep) -> str:
        return rep.manager_email or self.manager.email

    def reassigns_on_out_of_office(self, rep: Rep) -> bool:
        """The rep's own `reassign_on_out_of_office` when set, else the team's."""
        own = rep.reassign_on_out_of_office
        return self.reassign_on_out_of_office if own is None else own


def bind_company_holidays(teams: Iterable[Team], dates: Iterable[date]) -> None:
    """Every rep's schedule counts the company's holidays as days off (the policy lists them
    once, at its top level). Called while the policy is validated, before any schedule."""
    days = frozenset(dates)
    for team in teams:
        for rep in team.reps:
            rep._company_holidays = days
