"""The console's one message catalogue: both languages complete, every key a template or script
names present, no text written straight into a template; and the locale's formats."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.requests import Request

from common.domain.outcomes import Reason, Status
from functions.console.i18n import Locale, locale_of, negotiate, zone
from functions.console.messages import MESSAGES
from functions.console.pages.movements import MOVEMENT_STATUSES

CONSOLE = Path(__file__).resolve().parents[2] / "functions" / "console"
TEMPLATES = sorted((CONSOLE / "templates").glob("*.html"))
SCRIPTS = sorted((CONSOLE / "static").glob("*.js"))
PYTHON = sorted(CONSOLE.glob("*.py"))
# A key built in a template from a prefix and a value (`"reason." ~ d.reason`): every value it takes.
DYNAMIC = {
    "reason.": [r.value for r in Reason],
    "outcome.": [s.value for s in Status],
    "status.": list(MOVEMENT_STATUSES),
    "event.": ["arrival", "departure"],
    "movements.heading.": list(MOVEMENT_STATUSES),
    "lang.": ["ru", "en"],
    "lang.name.": ["ru", "en"],
    "search.kind.": ["warehouse", "product", "movement"],
}
# Words a template may carry as they are in both languages (names of things, not sentences).
UNTRANSLATED = {"JSON", "API", "UTC", "CSV"}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_every_key_with_the_same_placeholders() -> None:
    en, ru = MESSAGES["en"], MESSAGES["ru"]
    assert sorted(set(en) - set(ru)) == [], "missing in Russian"
    assert sorted(set(ru) - set(en)) == [], "missing in English"
    for key in en:
        assert en[key].strip() and ru[key].strip(), key
        assert placeholders(en[key]) == placeholders(ru[key]), key


def test_russian_texts_are_in_russian() -> None:
    """A text copied over untranslated is a missing translation too (names and units aside)."""
    same = [
        k
        for k in MESSAGES["en"]
        if MESSAGES["en"][k] == MESSAGES["ru"][k] and re.search(r"[a-z]{4}", MESSAGES["en"][k])
    ]
    assert sorted(same) == ["brand", "lang.name.en", "nav.swagger"]  # names


def used_keys() -> set[str]:
    found: set[str] = set()
    for path in [*TEMPLATES, *SCRIPTS, *PYTHON]:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"""\bt\(\s*["']([a-z_][\w.]*[\w])["']""", text))
    for prefix, values in DYNAMIC.items():
        found |= {prefix + v for v in values}
    return found


def test_every_key_used_is_in_the_catalogue() -> None:
    used = used_keys()
    assert len(used) > 150
    assert sorted(used - set(MESSAGES["en"])) == []


def test_every_dynamic_key_prefix_a_template_builds_is_known() -> None:
    for path in TEMPLATES:
        for prefix in re.findall(r"""t\(\s*["']([\w.]+\.)["']\s*~""", path.read_text(encoding="utf-8")):
            assert prefix in DYNAMIC, (path.name, prefix)


def visible_text(template: str) -> str:
    text = re.sub(r"/api/(?:[\w/.-]|\{\{.*?\}\})*", " ", template)  # the JSON routes named beside the page
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", text, flags=re.S)
    attributes = " ".join(re.findall(r'(?:placeholder|title|aria-label|alt)="([^"]*)"', text))
    text = re.sub(r"<script[^>]*>.*?</script>|<style[^>]*>.*?</style>", " ", text, flags=re.S)
    return re.sub(r"<[^>]+>", " ", text) + " " + attributes


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_text_is_written_into_a_template(path: Path) -> None:
    words = set(re.findall(r"[^\W\d_]{2,}", visible_text(path.read_text(encoding="utf-8")))) - UNTRANSLATED
    assert words == set(), f"{path.name}: text outside the catalogue: {sorted(words)}"


def test_the_check_finds_text_written_into_a_template() -> None:
    assert "Show" in visible_text('<button type="submit">Show</button>')
    assert "warehouse" in visible_text('<input placeholder="warehouse id">')
    assert visible_text('<button>{{ t("common.show") }}</button>').strip() == ""


def test_numbers_and_times_per_language_and_zone() -> None:
    moscow = zone("Europe/Moscow")
    assert moscow is not None
    ru = Locale("ru", moscow, "Europe/Moscow", "Europe/Moscow")
    en = Locale("en", UTC, "UTC", "UTC")
    assert ru.num(74800) == "74\u00a0800" and en.num(74800) == "74,800"
    assert ru.decimal(12.5) == "12,50" and en.decimal(12.5) == "12.50"
    moment = datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)
    assert ru.time(moment) == "18.02.2025 15:12:56 MSK"
    assert en.time(moment) == "18 Feb 2025 12:12:56 UTC"
    assert ru.duration(3 * 3600 + 5 * 60) == "3 ч 05 мин" and en.duration(3 * 3600 + 5 * 60) == "3h 05m"
    assert ru.iso(moment) == "2025-02-18 15:12:56+03:00"
    # The calendar's ends: shown as typed rather than failing where the zone would leave it.
    assert ru.time(datetime(1, 1, 1, tzinfo=UTC)).startswith("01.01.0001 ")
    assert en.time(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) == "31 Dec 9999 23:59:59 UTC"
    assert ru.time(datetime(9999, 12, 31, 23, 0, tzinfo=UTC)) == "31.12.9999 23:00:00 UTC"


def request(headers: dict[str, str], cookies: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if cookies:
        raw.append((b"cookie", cookies.encode()))
    return Request({"type": "http", "method": "GET", "path": "/ui/", "headers": raw, "query_string": b""})


def test_language_from_accept_language_unless_the_switch_chose_one() -> None:
    assert negotiate("ru-RU,ru;q=0.9,en-US;q=0.8") == "ru"
    assert negotiate("de-DE, en;q=0.5, ru;q=0.7") == "ru"
    assert negotiate("de-DE") == "en" and negotiate("") == "en"
    assert locale_of(request({"Accept-Language": "ru"})).lang == "ru"
    assert locale_of(request({"Accept-Language": "ru"}, "lang=en")).lang == "en"
    assert locale_of(request({}, "lang=xx")).lang == "en"


def test_zone_from_the_choice_else_the_browser_else_utc() -> None:
    assert locale_of(request({})).zone_name == "UTC"
    assert locale_of(request({}, "browser_tz=Asia/Yekaterinburg")).zone_name == "Asia/Yekaterinburg"
    chosen = locale_of(request({}, "browser_tz=Asia/Yekaterinburg; tz=Europe/Moscow"))
    assert chosen.zone_name == "Europe/Moscow" and chosen.tz_choice == "Europe/Moscow"
    assert locale_of(request({}, "browser_tz=Asia/Yekaterinburg; tz=UTC")).zone_name == "UTC"
    assert locale_of(request({}, "browser_tz=../../etc/passwd")).zone_name == "UTC"
    assert locale_of(request({}, "tz=Mars/Olympus")).zone_name == "UTC"
