"""Business-hours arithmetic for SLA deadlines (router) and overdue reporting (followup).

Working windows are written in the rep's local wall time, but SLA clocks measure real elapsed
seconds. So every window is turned into a pair of UTC instants for its concrete local date and
all arithmetic happens on UTC datetimes: a DST change then simply makes that day's window an hour
shorter or longer, and nothing drifts across transitions.

Wall times that do not exist (spring-forward gap) or exist twice (fall-back) are resolved the
PEP 495 default way (``fold=0``): a non-existent time moves forward by the gap's length, an
ambiguous one means its first occurrence. A window that collapses to nothing that way is skipped.

An end of ``time.max`` means "24:00", the end of the local day, so a window can cover a whole day.
All functions are pure: they never read the clock.

On top of the weekly windows, a ``TimeOff`` takes time away: whole local dates (public holidays
of the rep's country, company holidays) and absolute periods (out of office). A date off removes
that local date's windows, whatever its length on a DST day; a period cuts the windows it
overlaps, so a holiday or an absence that starts mid-window ends the window there.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WorkingHours = Mapping[int, Sequence[tuple[time, time]]]
"""Weekday (0 = Monday) -> ordered, non-overlapping (start, end) windows in local wall time."""

END_OF_DAY = time.max
"""Window end meaning 24:00 (policy files write it as "24:00")."""

# A schedule with working time has a window at least once a week; a fortnight without any usable
# window means every window collapsed (e.g. only inside DST gaps), so searching on would never end.
_MAX_EMPTY_DAYS = 14
# Time off is finite, but a calendar could still list every day: give up after ten years
# in a row without any working time.
_MAX_DAYS = 3653


class DaysOff:
    """Whole local dates off: a set of dates (company holidays) and calendars (any container of
    dates, e.g. a ``holidays`` country calendar, which fills in each year as it is asked)."""

    __slots__ = ("calendars", "dates")

    def __init__(self, dates: Iterable[date] = (), calendars: Iterable[Container[date]] = ()):
        self.dates = frozenset(dates)
        self.calendars = tuple(calendars)

    def __contains__(self, day: object) -> bool:
        return day in self.dates or any(day in c for c in self.calendars)

    def __bool__(self) -> bool:
        return bool(self.dates or self.calendars)


@dataclass(frozen=True, slots=True)
class TimeOff:
    """Non-working time on top of the weekly windows: local dates off and UTC periods."""

    days: DaysOff = field(default_factory=DaysOff)
    periods: tuple[tuple[datetime, datetime], ...] = ()  # [from, until), aware

    def cut(
        self, day: date, windows: list[tuple[datetime, datetime]]
    ) -> list[tuple[datetime, datetime]]:
        """One local date's windows less the time off."""
        if self.days and day in self.days:
            return []
        for p_from, p_until in self.periods:
            windows = [
                piece
                for ws, we in windows
                for piece in ((ws, min(we, p_from)), (max(ws, p_until), we))
                if piece[1] > piece[0]
            ]
        return windows


NO_TIME_OFF = TimeOff()


def _require_aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _require_hours(hours: WorkingHours) -> None:
    if not any(hours.get(day) for day in range(7)):
        raise ValueError("working hours are empty: there is no working time at all")


def _local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    if at == END_OF_DAY:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    else:
        local = datetime.combine(day, at, tzinfo=tz)
    return local.astimezone(UTC)


def _day_windows(day: date, hours: WorkingHours, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The UTC instants of one local date's windows, in order (before any time off)."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(hours.get(day.weekday(), ())):
        ws, we = _local_to_utc(day, start, tz), _local_to_utc(day, end, tz)
        if we > ws:
            out.append((ws, we))
    return out


def _windows_from(
    at: datetime, hours: WorkingHours, tz: ZoneInfo, off: TimeOff = NO_TIME_OFF
) -> Iterator[tuple[datetime, datetime]]:
    """Every window ending after ``at`` (UTC), in chronological order, forever.

    Only days the weekly hours leave empty count towards giving up: days off and absences
    end, however long they are (a rep away for a month comes back)."""
    day = at.astimezone(tz).date() - timedelta(days=1)  # a 24:00 window of yesterday ends today
    empty_days = dry_days = 0
    while dry_days <= _MAX_DAYS:
        weekly = [(ws, we) for ws, we in _day_windows(day, hours, tz) if we > at]
        empty_days = 0 if weekly else empty_days + 1
        if empty_days > _MAX_EMPTY_DAYS:
            raise ValueError("working hours never yield usable working time")
        windows = off.cut(day, weekly)
        dry_days = 0 if windows else dry_days + 1
        yield from windows
        day += timedelta(days=1)
    raise ValueError("no working time within ten years (every day is time off)")


def add_business_seconds(
    start: datetime, seconds: int, hours: WorkingHours, tz: ZoneInfo, off: TimeOff = NO_TIME_OFF
) -> datetime:
    """The instant (aware, UTC) when ``seconds`` of working time have elapsed after ``start``.

    Time outside the windows does not count; a deadline landing exactly on a window's end stays
    there rather than jumping to the next morning. ``seconds == 0`` returns ``start`` itself.
    """
    begin = _require_aware("start", start)
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    _require_hours(hours)
    remaining = timedelta(seconds=seconds)
    if not remaining:
        return begin
    for ws, we in _windows_from(begin, hours, tz, off):
        ws = max(ws, begin)
        available = we - ws
        if remaining <= available:
            return ws + remaining
        remaining -= available
    raise AssertionError("unreachable: _windows_from raises when it runs out")  # pragma: no cover


def business_seconds_between(
    start: datetime, end: datetime, hours: WorkingHours, tz: ZoneInfo, off: TimeOff = NO_TIME_OFF
) -> int:
    """Whole seconds of working time in ``[start, end)``; 0 when ``end <= start``."""
    begin, finish = _require_aware("start", start), _require_aware("end", end)
    _require_hours(hours)
    total = timedelta()
    if finish <= begin:
        return 0
    for ws, we in _windows_from(begin, hours, tz, off):
        if ws >= finish:
            break
        total += min(we, finish) - max(ws, begin)
    return int(total.total_seconds())


def is_working_time(
    at: datetime, hours: WorkingHours, tz: ZoneInfo, off: TimeOff = NO_TIME_OFF
) -> bool:
    """Whether ``at`` lies inside one of the windows (start inclusive, end exclusive)."""
    instant = _require_aware("at", at)
    day = instant.astimezone(tz).date()
    for d in (day - timedelta(days=1), day):
        if any(ws <= instant < we for ws, we in off.cut(d, _day_windows(d, hours, tz))):
            return True
    return False


def next_working_time(
    at: datetime, hours: WorkingHours, tz: ZoneInfo, off: TimeOff = NO_TIME_OFF
) -> datetime:
    """``at`` itself (UTC) when working, else the start of the next window."""
    instant = _require_aware("at", at)
    _require_hours(hours)
    ws, _ = next(_windows_from(instant, hours, tz, off))
    return max(ws, instant)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A rep's working hours bound to their time zone and time off (holidays, out of office),
    so callers cannot mix them up or forget one."""

    hours: WorkingHours
    tz: ZoneInfo
    off: TimeOff = NO_TIME_OFF

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime:
        return add_business_seconds(start, seconds, self.hours, self.tz, self.off)

    def business_seconds_between(self, start: datetime, end: datetime) -> int:
        return business_seconds_between(start, end, self.hours, self.tz, self.off)

    def is_working_time(self, at: datetime) -> bool:
        return is_working_time(at, self.hours, self.tz, self.off)

    def next_working_time(self, at: datetime) -> datetime:
        return next_working_time(at, self.hours, self.tz, self.off)

    @property
    def has_working_time(self) -> bool:
        return any(self.hours.get(day) for day in range(7))
