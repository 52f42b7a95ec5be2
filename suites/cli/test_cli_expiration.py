"""`--expiration yyyy-MM-dd`: sent as 00:00 UTC of that day, shown as a local date, bad dates refused.

Dates are chosen from the server's clock, so they are in the future (or the past) for the
target whatever the machine's clock says. Every CLI call of a fixture runs side by side.
"""

from __future__ import annotations

import calendar
import os
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest

from sts_conformance.checking.cli_runner import (
    CliCreate,
    CliResult,
    TableError,
    cell_date,
    concurrently,
    create_with_cli,
    created_secret,
    listed_by_api,
    parse_table,
)
from sts_conformance.core import preconditions as pre

# the sts CLI presents service tokens as X-API-Key only: where that form is not accepted (at all, or
# for token management) it cannot work, whatever the CLI does
# every create of the sts CLI carries "dedicatedSubject": "" (ST-LIFE-012)
# the checks run at once with the other modules' (checking/ahead.py; hence this module's fixtures are of
# session scope): each batch of CLI calls is made by a fixture, while the checks already started run
pytestmark = [
    pytest.mark.precondition(pre.X_API_KEY_FORM, pre.X_API_KEY_MANAGEMENT, pre.EMPTY_DEDICATED_SUBJECT),
    pytest.mark.together,
]

_MS_PER_DAY = 86_400_000
#: the zones the CLI runs in: UTC, far west (00:00 UTC is the previous afternoon) and far east (UTC+14)
ZONES = ("UTC", "America/Los_Angeles", "Pacific/Kiritimati")
_ZONE_IDS = {"UTC": "UTC", "America/Los_Angeles": "Los_Angeles-UTC-8", "Pacific/Kiritimati": "Kiritimati-UTC+14"}


def midnight_utc_ms(day: date) -> int:
    return calendar.timegm(day.timetuple()) * 1000


def local_date(epoch_ms: int, zone: str) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=zoneinfo.ZoneInfo(zone)).date()


def zone_known_here(zone: str) -> bool:
    """Whether this machine's time zone database has ``zone`` (what a CLI run here would read)."""
    return zone == "UTC" or any(os.path.isfile(os.path.join(root, zone)) for root in zoneinfo.TZPATH)


def require_zone(zone: str) -> None:
    if not zone_known_here(zone):
        pytest.skip(
            f"time zone {zone} is not in this machine's time zone database (searched {', '.join(zoneinfo.TZPATH)}); "
            f"a CLI run with TZ={zone} cannot resolve it"
        )


def server_today(target: Any) -> date:
    return datetime.fromtimestamp(target.server_now_ms() / 1000, tz=UTC).date()


# -- a valid date round-trips ------------------------------------------------------------------


@dataclass(frozen=True)
class Dated:
    day: date
    #: one create per zone the CLI ran in, all with --expiration <day>
    created: dict[str, CliCreate]
    #: `list` run in each zone
    lists: dict[str, CliResult]
    #: created over the API with expiration 00:00 UTC of <day>: what `list` shows is judged on this one
    by_api: Any
    api_entries: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def dated(cli, target, ledger) -> Dated:
    """Creates with --expiration in three zones and lists in three zones, all six CLI calls at once."""
    day = server_today(target) + timedelta(days=30)
    zones = [z for z in ZONES if zone_known_here(z)]
    role = [target.profile.unprivileged_role]
    by_api = ledger.create("cli-dated-api", roles=role, expiry_ms=midnight_utc_ms(day))
    names = {z: ledger.name("cli-dated") for z in zones}

    def create(zone: str) -> CliCreate:
        return create_with_cli(
            cli, ledger, names[zone], role, token=target.admin_token, expiration=day.isoformat(), tz=zone
        )

    def list_in(zone: str) -> CliResult:
        return cli.run("service-token", "list", token=target.admin_token, tz=zone)

    results = concurrently(*(lambda z=z: create(z) for z in zones), *(lambda z=z: list_in(z) for z in zones))
    created = {z: cast(CliCreate, r) for z, r in zip(zones, results[: len(zones)], strict=True)}
    lists = {z: cast(CliResult, r) for z, r in zip(zones, results[len(zones) :], strict=True)}
    return Dated(day, created, lists, by_api, listed_by_api(ledger, names.values()))


@pytest.mark.requirement("ST-CLI-006")
@pytest.mark.precondition(pre.EXPIRY_LISTED)  # read through the API's list: an expiry kept as sent
@pytest.mark.parametrize("zone", ZONES, ids=[_ZONE_IDS[z] for z in ZONES])
def test_expiration_sent_as_midnight_utc(dated, zone):
    """--expiration yyyy-MM-dd reaches the API as 00:00:00 UTC of that day, whatever TZ the CLI runs in."""
    require_zone(zone)
    c = dated.created[zone]
    assert c.result.exit_code == 0, f"create --expiration {dated.day} exited {c.result.exit_code}\n{c.describe()}"
    entries = dated.api_entries[c.name]
    assert len(entries) == 1, f"the API lists {len(entries)} tokens named {c.name!r}, expected 1\n{c.describe()}"
    expected = midnight_utc_ms(dated.day)
    got = entries[0].get("expiration")
    shown = datetime.fromtimestamp(got / 1000, tz=UTC).isoformat() if isinstance(got, int) else "not a number"
    assert got == expected, (
        f"create --expiration {dated.day} with TZ={zone}: the API lists expiration {got!r} ({shown}), "
        f"expected {expected} (00:00:00 UTC of {dated.day})"
    )


@pytest.mark.requirement("ST-CLI-007")
@pytest.mark.precondition(pre.EXPIRY_LISTED)  # read through the API's list: an expiry kept as sent
@pytest.mark.parametrize("zone", ZONES, ids=[_ZONE_IDS[z] for z in ZONES])
def test_list_shows_expiration_as_local_date(dated, zone):
    """`list` shows an expiration of 00:00 UTC as the date it is in the CLI's local zone."""
    require_zone(zone)
    res = dated.lists[zone]
    assert res.exit_code == 0, f"list exited {res.exit_code}, expected 0\n{res.describe()}"
    try:
        table = parse_table(res.out)
    except TableError as exc:
        raise AssertionError(f"`list` printed no readable table: {exc}\n{res.describe()}") from None
    tok = dated.by_api
    rows = table.with_id(tok.id)
    assert len(rows) == 1, f"the table has {len(rows)} rows with ID {tok.id}, expected 1\n{res.describe()}"
    expected = local_date(midnight_utc_ms(dated.day), zone)
    cell = rows[0]["EXPIRATION"]
    assert cell_date(cell) == expected.isoformat(), (
        f"with TZ={zone}, an expiration of 00:00 UTC on {dated.day} is shown as {cell!r}, "
        f"expected {expected} (that instant in {zone})"
    )


# -- bad dates are refused -------------------------------------------------------------------------

MALFORMED = ("slashes", "day-first", "unpadded", "timestamp", "epoch-ms")
IMPOSSIBLE = ("february-30", "month-13", "february-29-not-leap")
PAST = ("yesterday", "today")


def bad_dates(today: date) -> dict[str, str]:
    """Each refused case, with dates placed relative to the server's ``today``."""
    year = today.year + 4
    not_leap = next(y for y in range(year, year + 4) if not calendar.isleap(y))
    return {
        "slashes": f"{year}/01/02",
        "day-first": f"02-01-{year}",
        "unpadded": f"{year}-1-2",
        "timestamp": f"{year}-01-02T00:00:00Z",
        "epoch-ms": str(midnight_utc_ms(date(year, 1, 2))),
        "february-30": f"{year}-02-30",
        "month-13": f"{year}-13-01",
        "february-29-not-leap": f"{not_leap}-02-29",
        # 00:00 UTC today has already passed on the server
        "yesterday": (today - timedelta(days=1)).isoformat(),
        "today": today.isoformat(),
    }


@dataclass(frozen=True)
class Attempt:
    """One ``create --expiration VALUE`` by the CLI: what it did, and what the API lists under its name."""

    value: str
    name: str
    result: CliResult
    created: list[dict[str, Any]]


def attempt_dates(
    cli, target, ledger, label: str, values: dict[str, str], output: str | None = None
) -> dict[str, Attempt]:
    """Every ``--expiration`` of ``values`` tried at once, then the API list to see what each created.

    Each create is journalled before the CLI sends it: a token the list never shows is still looked
    for, and named if it stays, at the end of the run. The list is read again, within its settle
    window, until it shows every token the CLI said it created (exit 0).
    """
    names = {case: ledger.name(f"{label}-{case}") for case in values}
    role = target.profile.unprivileged_role
    keys = {name: ledger.intend(name, [role]) for name in names.values()}

    def attempt(case: str) -> CliResult:
        args = ["service-token", "create", "--name", names[case], "--roles", role, "--expiration", values[case]]
        return cli.run(*args, token=target.admin_token, output=output)

    results = dict(zip(values, concurrently(*(lambda c=c: attempt(c) for c in values)), strict=True))
    for case, res in results.items():
        ledger.journal.answered(keys[names[case]], 200 if res.exit_code == 0 else 400)
    made = [names[case] for case, res in results.items() if res.exit_code == 0]
    found = listed_by_api(ledger, names.values(), expect=made)
    for name, entries in found.items():
        if entries:
            ledger.adopt(name, key=keys[name])  # whatever it created is cleaned up
    return {case: Attempt(values[case], names[case], results[case], found[names[case]]) for case in values}


@pytest.fixture(scope="session")
def refused(cli, target, ledger) -> dict[str, Attempt]:
    """Every bad --expiration tried at once (a token made despite it fails the check; cleanup removes it)."""
    return attempt_dates(cli, target, ledger, "cli-baddate", bad_dates(server_today(target)))


def _expect_refused_date(refused: dict[str, Attempt], case: str, observe) -> None:
    r = refused[case]
    res = r.result
    shown = res.describe(hide_unparsed=[r.name, r.value])  # a token printed in an unexpected form stays hidden
    observe("cli_bad_expiration_exit_code", {"case": case, "exit_code": res.exit_code})
    assert res.exit_code != 0, f"create --expiration {r.value!r} exited 0, expected a refusal\n{shown}"
    assert created_secret(res) is None, f"create --expiration {r.value!r} printed a created token\n{shown}"
    assert not r.created, (
        f"create --expiration {r.value!r} exited {res.exit_code} but created {len(r.created)} token(s) "
        f"named {r.name!r}\n{shown}"
    )


@pytest.mark.requirement("ST-CLI-008")
@pytest.mark.parametrize("case", MALFORMED + IMPOSSIBLE)
def test_malformed_or_impossible_expiration_refused(refused, case, observe):
    """An --expiration that is not a real yyyy-MM-dd day exits non-zero and creates nothing."""
    _expect_refused_date(refused, case, observe)


@pytest.mark.requirement("ST-CLI-009")
@pytest.mark.precondition(pre.PAST_EXPIRY_REFUSED)  # the API itself refuses a past expiry
@pytest.mark.parametrize("case", PAST)
def test_past_expiration_refused(refused, case, observe):
    """An --expiration in the past (00:00 UTC today included) exits non-zero and creates nothing."""
    _expect_refused_date(refused, case, observe)


# -- dates at the edges: given, so never turned into "no expiration" ----------------------------

#: dates a CLI may mistake for "none": Go's zero date (the real CLI's IsZero() check), the epoch's
#: first day (0 ms), and the last day a four-digit year allows
EDGE_DATES = {"zero-date": "0001-01-01", "epoch-start": "1970-01-01", "far-future": "9999-12-31"}


@pytest.fixture(scope="session")
def edges(cli, target, ledger) -> dict[str, Attempt]:
    """Every edge date tried at once, read back as JSON."""
    return attempt_dates(cli, target, ledger, "cli-edge", EDGE_DATES, output="json")


@pytest.mark.requirement("ST-CLI-013")
@pytest.mark.parametrize("case", EDGE_DATES)
def test_given_expiration_never_becomes_no_expiration(edges, case, observe):
    """--expiration at an edge (0001-01-01, 1970-01-01, 9999-12-31) is refused, or the token carries an expiration.

    What fails is a token that never expires although the user gave a date.
    """
    e = edges[case]
    res = e.result
    shown = res.describe(hide_unparsed=[e.name, e.value])
    carried = [item.get("expiration") for item in e.created]
    observe("cli_edge_expiration", {"case": case, "exit_code": res.exit_code, "expirations": carried})
    never = [item for item in e.created if item.get("expiration") is None]
    assert not never, (
        f"create --expiration {e.value} made {len(never)} token(s) named {e.name!r} that never expire: the date "
        f"the user gave was dropped (refusing the date, or sending it, would both be correct)\n{shown}"
    )
    if not e.created:
        assert res.exit_code != 0, (
            f"create --expiration {e.value} exited 0, but the API lists no token named {e.name!r}\n{shown}"
        )
