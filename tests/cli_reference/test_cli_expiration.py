"""Dates: --expiration is read as 00:00 UTC and sent as epoch ms; list prints local dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import respx

from sts_reference.cli import expiration_to_epoch_ms

from .conftest import TARGET_ENV, RunCli

JUNE_1_2025_UTC_MS = 1_748_736_000_000  # 2025-06-01T00:00:00Z
LATE_JUNE_1_2025_UTC_MS = JUNE_1_2025_UTC_MS + (23 * 60 + 30) * 60_000  # 23:30Z that day


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        pytest.param("1970-01-01", 0, id="the epoch"),
        pytest.param("2025-06-01", JUNE_1_2025_UTC_MS, id="an ordinary day"),
        pytest.param("2024-02-29", 1_709_164_800_000, id="a leap day"),
        pytest.param("2038-01-20", 2_147_558_400_000, id="past the 32-bit seconds limit"),
        pytest.param("9999-12-31", 253_402_214_400_000, id="the last four-digit year"),
    ],
)
def test_expiration_is_midnight_utc_in_epoch_ms(text: str, epoch_ms: int) -> None:
    """yyyy-MM-dd means 00:00:00 UTC of that day, whatever zone the CLI runs in."""
    assert expiration_to_epoch_ms(text) == epoch_ms
    assert datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().startswith(text + "T00:00:00")


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_create_sends_expiry_date_independent_of_local_zone(run_cli: RunCli, api: respx.MockRouter, zone: str) -> None:
    """The zone of the machine running the CLI does not move the instant sent."""
    route = api.post("/security/tokens").respond(
        200, json={"name": "n", "token": "svctok-x", "expiration": JUNE_1_2025_UTC_MS}
    )

    create = ["service-token", "create", "--name", "n", "--roles", "r", "--expiration", "2025-06-01"]
    result = run_cli(*create, env={**TARGET_ENV, "TZ": zone})

    assert result.code == 0, result.err
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"name": "n", "roles": ["r"], "expiryDate": JUNE_1_2025_UTC_MS, "dedicatedSubject": ""}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2025-02-30", id="impossible day"),
        pytest.param("2025-13-01", id="impossible month"),
        pytest.param("2023-02-29", id="no leap day that year"),
        pytest.param("2025-6-1", id="digits not padded"),
        pytest.param("01-06-2025", id="day first"),
        pytest.param("2025/06/01", id="slashes"),
        pytest.param("20250601", id="no separators"),
        pytest.param("2025-06-01T00:00:00Z", id="a timestamp"),
        pytest.param("2025-06-01 ", id="trailing blank"),
        pytest.param("１２３４-06-01", id="non-ASCII digits"),
        pytest.param("1748736000000", id="epoch ms"),
        pytest.param("tomorrow", id="words"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_expiration_is_refused_before_anything_is_sent(
    run_cli: RunCli, offline: respx.MockRouter, text: str
) -> None:
    """Any other format, or a date that does not exist, is a flag error (exit 3) and sends nothing."""
    result = run_cli("service-token", "create", "--name", "n", "--roles", "r", "--expiration", text)

    assert result.code == 3
    assert "--expiration" in result.err
    assert result.out.startswith("usage:")  # as cobra, the usage follows a flag error, on stdout


def test_past_expiration_is_left_for_the_server_to_refuse(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A well-formed date in the past is sent; the server's 400 becomes exit code 3."""
    api.post("/security/tokens").respond(
        400,
        json={"_type": "ServiceTokenInvalidExpiryError", "message": "expiry in the past"},
    )

    result = run_cli("service-token", "create", "--name", "n", "--roles", "r", "--expiration", "2001-01-01")

    assert result.code == 3
    assert result.err.startswith("[ERROR] 400 Bad Request\n")
    assert "ServiceTokenInvalidExpiryError" in result.err


def listed_expiration(run_cli: RunCli, api: respx.MockRouter, epoch_ms: int, tz: str | None) -> str:
    """The EXPIRATION cell `list` prints for one token expiring at ``epoch_ms``."""
    api.get("/security/tokens").respond(200, json=[{"id": 1, "name": "n", "expiration": epoch_ms, "roles": ["r"]}])
    env = {key: value for key, value in TARGET_ENV.items() if key != "TZ"}
    if tz is not None:
        env["TZ"] = tz
    result = run_cli("service-token", "list", env=env)
    assert result.code == 0, result.err
    _header, row = result.out.splitlines()
    return row.split(" | ")[2].strip()


@pytest.mark.parametrize(
    ("epoch_ms", "tz", "shown"),
    [
        pytest.param(JUNE_1_2025_UTC_MS, "UTC", "2025-06-01", id="UTC"),
        pytest.param(JUNE_1_2025_UTC_MS, "America/Los_Angeles", "2025-05-31", id="west: day before"),
        pytest.param(JUNE_1_2025_UTC_MS, "Asia/Tokyo", "2025-06-01", id="east: same day"),
        pytest.param(LATE_JUNE_1_2025_UTC_MS, "Asia/Tokyo", "2025-06-02", id="east: day after"),
        pytest.param(JUNE_1_2025_UTC_MS, ":America/New_York", "2025-05-31", id="TZ=:Name form"),
        pytest.param(JUNE_1_2025_UTC_MS, "", "2025-06-01", id="empty TZ means UTC"),
        pytest.param(LATE_JUNE_1_2025_UTC_MS, "Not/A_Zone", "2025-06-01", id="unknown zone: UTC"),
        pytest.param(LATE_JUNE_1_2025_UTC_MS, "JST-9", "2025-06-01", id="POSIX rule: UTC, as in Go"),
        pytest.param(-1, "UTC", "1969-12-31", id="just before the epoch"),
    ],
)
def test_list_prints_expiration_as_local_date_per_tz(
    run_cli: RunCli, api: respx.MockRouter, epoch_ms: int, tz: str, shown: str
) -> None:
    """`list` shows the expiry instant as a date in the zone TZ names, as the Go CLI does."""
    assert listed_expiration(run_cli, api, epoch_ms, tz) == shown


def test_list_reads_tz_as_a_zone_file_path(run_cli: RunCli, api: respx.MockRouter) -> None:
    """TZ=/path/to/zonefile is honoured like a zone name."""
    zone_file = Path("/usr/share/zoneinfo/Asia/Tokyo")
    if not zone_file.is_file():
        pytest.skip(f"no system zone database at {zone_file.parent.parent}")
    assert listed_expiration(run_cli, api, LATE_JUNE_1_2025_UTC_MS, str(zone_file)) == "2025-06-02"


def test_list_without_tz_uses_the_system_zone(run_cli: RunCli, api: respx.MockRouter) -> None:
    """With TZ unset, the date is the one the system's local time gives."""
    expected = datetime.fromtimestamp(LATE_JUNE_1_2025_UTC_MS / 1000).date().isoformat()
    assert listed_expiration(run_cli, api, LATE_JUNE_1_2025_UTC_MS, None) == expected


def test_expiration_round_trips_in_utc(run_cli: RunCli, api: respx.MockRouter) -> None:
    """The date given to --expiration is the date `list` shows, when the CLI runs in UTC."""
    created = api.post("/security/tokens").respond(200, json={"name": "n", "token": "t"})
    assert run_cli("service-token", "create", "--name", "n", "--roles", "r", "--expiration", "2031-07-15").code == 0
    sent = json.loads(created.calls.last.request.content)["expiryDate"]

    assert listed_expiration(run_cli, api, sent, "UTC") == "2031-07-15"


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        pytest.param("0001-01-01", -62_135_596_800_000, id="Go's zero date"),
        pytest.param("0000-01-01", -62_167_219_200_000, id="year zero, which Go reads"),
        pytest.param("0000-02-29", -62_162_121_600_000, id="year zero is a leap year"),
    ],
)
def test_dates_at_the_start_of_time_are_sent_as_given(
    run_cli: RunCli, api: respx.MockRouter, text: str, epoch_ms: int
) -> None:
    """The faithful CLI sends even Go's zero date (the server refuses it as past): it never drops a given date."""
    route = api.post("/security/tokens").respond(400, json={"_type": "ServiceTokenInvalidExpiryError"})

    result = run_cli("service-token", "create", "--name", "n", "--roles", "r", "--expiration", text)

    assert result.code == 3
    assert json.loads(route.calls.last.request.content)["expiryDate"] == epoch_ms


def test_zero_date_fault_sends_no_expiry(run_cli: RunCli, api: respx.MockRouter) -> None:
    """The CLI fault cli-zero-date-no-expiry reproduces the real CLI: 0001-01-01 means no expiration."""
    route = api.post("/security/tokens").respond(200, json={"name": "n", "token": "svctok-x"})
    create = ["service-token", "create", "--name", "n", "--roles", "r"]

    zero = run_cli("--fault", "cli-zero-date-no-expiry", *create, "--expiration", "0001-01-01")
    other = run_cli("--fault", "cli-zero-date-no-expiry", *create, "--expiration", "2031-07-15")

    assert (zero.code, other.code) == (0, 0)
    first, second = (json.loads(call.request.content) for call in route.calls)
    assert "expiryDate" not in first
    assert second["expiryDate"] == expiration_to_epoch_ms("2031-07-15")
