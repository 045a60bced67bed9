"""The lead's own time zone, when it can be known, for "expect contact by ..." in their reply.

A country with one clock (every zone of it shows the same time at that instant: DE's Berlin and
Busingen, FR, GB...) gives its zone; a country with several (US, ES with the Canaries) needs
the phone number's area, when phonenumbers maps it to one clock in that country. Otherwise the
message says UTC, and says so: a wrong local time is worse than an honest UTC one.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from shared.events import Contact

UTC_ZONE = ZoneInfo("UTC")


@functools.cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """ISO country code -> IANA zones, from the tzdata package's zone.tab (principal first)."""
    text = (files("tzdata.zoneinfo") / "zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones.setdefault(parts[0], []).append(parts[2])
    return {cc: tuple(z) for cc, z in zones.items()}


def _one_clock(names: tuple[str, ...], at: datetime) -> ZoneInfo | None:
    """The first zone, if every zone named shows the same offset at `at`; else None."""
    try:
        zones = [ZoneInfo(n) for n in names]
    except (ZoneInfoNotFoundError, ValueError):
        return None
    if not zones or len({at.astimezone(z).utcoffset() for z in zones}) != 1:
        return None
    return zones[0]


def _phone_zone(phone: str, country: str | None, at: datetime) -> ZoneInfo | None:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if country and region != country:
        return None  # a foreign phone says nothing about where this person is
    names = tuple(
        z
        for z in phone_timezone.time_zones_for_number(number)
        if z != phone_timezone.UNKNOWN_TIMEZONE
    )
    return _one_clock(names, at)


def lead_zone(contact: Contact, at: datetime) -> ZoneInfo | None:
    """The lead's zone at `at` (from their country, else their phone), or None if unknown."""
    country = (contact.country or "").upper() or None
    if country:
        zone = _one_clock(_country_zones().get(country, ()), at)
        if zone is not None:
            return zone
    if contact.phone:
        return _phone_zone(contact.phone, country, at)
    return None


def ceil_minute(at: datetime) -> datetime:
    """Round up to the minute: "by 14:35" must never be earlier than the deadline."""
    seconds = at.second + at.microsecond / 1e6
    if not seconds:
        return at
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


def format_local(at: datetime, zone: ZoneInfo | None) -> str:
    """'Wednesday 2 December at 14:35 (Berlin time, UTC+01:00)' or '... at 13:35 UTC'."""
    shown = ceil_minute(at).astimezone(zone or UTC_ZONE)
    day = f"{shown:%A} {shown.day} {shown:%B} at {shown:%H:%M}"
    if zone is None or zone.key in ("UTC", "Etc/UTC"):
        return f"{day} UTC"
    city = zone.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"{day} ({city} time, UTC{_offset(shown)})"


def format_short(at: datetime, zone: ZoneInfo | None) -> str:
    """'Wed 2 Dec 14:35 CET' for people who know their own zone (reps, managers)."""
    shown = ceil_minute(at).astimezone(zone or UTC_ZONE)
    return f"{shown:%a} {shown.day} {shown:%b %H:%M} {shown.tzname() or 'UTC'}"


def _offset(at: datetime) -> str:
    off = at.utcoffset() or timedelta(0)
    minutes = math.floor(off.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def format_duration(seconds: float) -> str:
    """'5 min', '2 h 10 min', '3 d 4 h' (whole minutes, rounded up)."""
    minutes = max(0, math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
