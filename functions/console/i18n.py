"""The operator's language, time zone and number format, from the request.

- Language: the `lang` cookie (set by the switch, /ui/settings), else the first of Russian or
  English `Accept-Language` names, else English. Every text comes from the one catalogue,
  functions/console/messages.py.
- Time zone: the `tz` cookie: `UTC`, an IANA name, or `auto` (the default): the browser's zone,
  which console.js keeps in the `browser_tz` cookie. Every time shown carries its zone's label.
- Numbers: grouped per language (ru "74 800" with a no-break space, en "74,800").

Hand-written rather than Babel: two languages, a handful of formats, no dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from starlette.requests import Request

from functions.console.messages import MESSAGES

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "lang"
TZ_COOKIE = "tz"
BROWSER_TZ_COOKIE = "browser_tz"
AUTO = "auto"
COOKIE_MAX_AGE = 365 * 86400
NBSP = "\u00a0"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
# Offered first in the zone list: Russia's zones, west to east, then UTC.
RUSSIAN_ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka",
)  # fmt: skip
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=256)
def zone(name: str) -> tzinfo | None:
    """The zone called `name`, or None when it is no zone this machine knows."""
    if name.upper() == "UTC":
        return UTC
    if not _ZONE_NAME.match(name) or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=1)
def zone_choices() -> list[str]:
    """UTC, Russia's zones, then every other zone known here (alphabetical)."""
    rest = sorted(z for z in available_timezones() if "/" in z and z not in RUSSIAN_ZONES)
    return ["UTC", *(z for z in RUSSIAN_ZONES if zone(z)), *rest]


def negotiate(accept_language: str) -> str:
    """The best of LANGUAGES in an Accept-Language header (by q), else the default."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in accept_language.split(",")[:20]:
        name, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = name.strip().lower().split("-")[0]
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def plural_ru(n: int) -> str:
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


@dataclass(frozen=True)
class Locale:
    """What one request is rendered in: language, time zone (and the operator's choice of it)."""

    lang: str
    zone: tzinfo
    zone_name: str
    tz_choice: str  # AUTO, "UTC" or a zone name

    def t(self, key: str, **params: object) -> str:
        """The message `key` in this language; `{name}` placeholders filled from `params`."""
        text = MESSAGES[self.lang][key]
        return text.format(**params) if params else text

    def num(self, value: int | float | None) -> str:
        if value is None:
            return "—"
        text = f"{value:,}"
        return text.replace(",", NBSP) if self.lang == "ru" else text

    def decimal(self, value: float, digits: int = 2) -> str:
        text = f"{value:,.{digits}f}"
        if self.lang == "ru":
            return text.replace(",", NBSP).replace(".", ",")
        return text

    def local(self, value: datetime) -> datetime:
        """`value` in the operator's zone; as it is where that would leave the calendar (year 1, 9999)."""
        try:
            return value.astimezone(self.zone)
        except (OverflowError, ValueError):
            return value

    def zone_label(self, value: datetime | None = None) -> str:
        """The zone's short name at `value` (now by default): MSK, UTC, UTC+05."""
        moment = self.local(value or datetime.now(UTC))
        name = moment.tzname() or self.zone_name
        return "UTC" + name if name[:1] in "+-" else name

    def zone_offset(self) -> str:
        offset = datetime.now(UTC).astimezone(self.zone).strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:]}"

    def date(self, value: datetime) -> str:
        local = self.local(value)
        if self.lang == "ru":
            return f"{local:%d.%m}.{local.year:04d}"  # %Y drops a small year's zeros on glibc
        return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year:04d}"

    def time(self, value: datetime | None) -> str:
        """A moment as the operator reads it: date, time and the zone's label."""
        if value is None:
            return "—"
        local = self.local(value)
        return f"{self.date(value)} {local.strftime('%H:%M:%S')} {self.zone_label(value)}"

    def iso(self, value: datetime | None) -> str:
        """A moment for a spreadsheet: ISO 8601 in the operator's zone, with its offset."""
        return "" if value is None else self.local(value).isoformat(sep=" ")

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        total = int(round(seconds))
        sign = "−" if total < 0 else ""
        total = abs(total)
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        u = MESSAGES[self.lang]
        d, h, m, s = u["unit.d"], u["unit.h"], u["unit.m"], u["unit.s"]
        if days:
            return f"{sign}{days}{d} {hours}{h}"
        if hours:
            return f"{sign}{hours}{h} {minutes:02d}{m}"
        if minutes:
            return f"{sign}{minutes}{m} {secs:02d}{s}"
        return f"{sign}{secs}{s}"


def locale_of(request: Request | None) -> Locale:
    """The request's language and zone (English and UTC without a request)."""
    if request is None:
        return Locale(DEFAULT_LANGUAGE, UTC, "UTC", AUTO)
    cookies = request.cookies
    lang = cookies.get(LANG_COOKIE, "")
    if lang not in LANGUAGES:
        lang = negotiate(request.headers.get("accept-language", ""))
    choice = cookies.get(TZ_COOKIE, AUTO)
    name = choice if choice != AUTO else cookies.get(BROWSER_TZ_COOKIE, "UTC")
    found = zone(name)
    if found is None:
        choice = AUTO if choice != AUTO and zone(choice) is None else choice
        name, found = "UTC", UTC
    return Locale(lang, found, "UTC" if found is UTC else name, choice)
