"""``sts-conformance-cleanup``: it deletes what killed runs left behind, and nothing else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
import respx

from sts_conformance.target.profile import TARGET_ENV
from sts_conformance.tokens.cleanup import main
from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer, running_server

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "cleanup-admin-0123456789abcdef"
ADMIN_ENV = "STS_CLEANUP_TEST_ADMIN"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

RUN_A = ["stsct-1a2b3c-gw0-auth-7", "stsct-1a2b3c-main-exp-short-3", "stsct-1a2b3c-gw1-roles-1"]
RUN_B = ["stsct-4d5e6f-gw0-lifecycle-2", "stsct-4d5e6f-main-once-9"]
OTHERS = [
    "someone-elses-token",
    "stsct-notarun-x",
    "xstsct-1a2b3c-gw0-auth-7",
    "STSCT-1a2b3c-upper-prefix",
    "stsct-1A2B3C-upper-run",
    "stsct-1a2b3-five-digits",
    "stsct-1a2b3cd-seven-digits",
    "stsct-1a2b3c",
    " stsct-1a2b3c-leading-space",
    "stsct_1a2b3c-underscore",
]


@dataclass
class Target:
    server: RunningServer
    profile: Path
    ids: dict[str, int]

    def names(self) -> list[str]:
        return sorted(i["name"] for i in listed(self.server))


def listed(server: RunningServer) -> list[dict]:
    resp = httpx.get(f"{server.url}/api/security/tokens", headers={"X-API-Key": ADMIN})
    assert resp.status_code == 200, resp.text
    return resp.json()


def create(server: RunningServer, name: str, roles: list[str], expiry: int | None = None) -> str:
    body: dict = {"name": name, "roles": roles}
    if expiry is not None:
        body["expiryDate"] = expiry
    resp = httpx.post(f"{server.url}/api/security/tokens", json=body, headers={"X-API-Key": ADMIN})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def populate(server: RunningServer) -> dict[str, int]:
    """Tokens of two killed runs, and tokens of other users; name -> id."""
    for name in RUN_A + RUN_B + OTHERS:
        expiry = FAR_FUTURE_MS if "exp" in name else None
        roles = [] if "once" in name else ["stackstate-guest"]
        create(server, name, roles, expiry)
    return {i["name"]: int(i["id"]) for i in listed(server)}


def write_profile(path: Path, url: str, token: str = f"${{{ADMIN_ENV}}}", extra: str = "") -> Path:
    path.write_text(f"name: ext\nurl: {url}\nadmin_token: {token}\n{extra}", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    monkeypatch.setenv(ADMIN_ENV, ADMIN)
    monkeypatch.delenv(TARGET_ENV, raising=False)


def _start(tmp_path: Path, faults: tuple[str, ...] = ()) -> Iterator[Target]:
    spec = BootstrapSpec(token=ADMIN, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(auth_config=spec, faults=faults) as srv:
        ids = populate(srv)
        yield Target(srv, write_profile(tmp_path / "ext.yaml", srv.url), ids)


@pytest.fixture
def target(tmp_path) -> Iterator[Target]:
    yield from _start(tmp_path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def table_ids(out: str) -> list[int]:
    """The ids in the table rows, in order (the RUN column is 6 hex digits, the ID column follows)."""
    return [int(m.group(2)) for m in re.finditer(r"^([0-9a-f]{6})  +([0-9]+)  ", out, re.MULTILINE)]


# -- selection and the dry run ------------------------------------------------------------


def test_dry_run_lists_exactly_the_prefixed_tokens_and_deletes_nothing(capsys, target):
    """Without --yes the tokens of every run are listed, grouped by run, and nothing is deleted."""
    before = target.names()
    status, out, err = run(capsys, "--target", str(target.profile))
    assert status == 0, out + err
    assert err == ""
    assert table_ids(out) == [target.ids[n] for n in sorted(RUN_A)] + [target.ids[n] for n in sorted(RUN_B)]
    for name in [*OTHERS, "bootstrap"]:
        assert str(target.ids.get(name, "no-such-id")) not in out, f"{name!r} was selected"
    assert "runs 1a2b3c (3), 4d5e6f (2)" in out
    assert "dry run: nothing deleted; pass --yes to delete these 5 tokens" in out
    assert target.names() == before


def test_table_shows_roles_and_expiration_in_utc(capsys, target):
    status, out, _ = run(capsys, "--target", str(target.profile))
    assert status == 0
    rows = {line.split()[2]: line for line in out.splitlines() if re.match(r"^[0-9a-f]{6}  ", line)}
    assert rows["stsct-1a2b3c-main-exp-short-3"].endswith("2100-01-01 00:00:00")
    assert rows["stsct-1a2b3c-gw0-auth-7"].endswith("never")
    assert "stackstate-guest" in rows["stsct-1a2b3c-gw0-auth-7"]
    assert "(none)" in rows["stsct-4d5e6f-main-once-9"]
    assert re.search(r"^RUN +ID +NAME +ROLES +EXPIRES \(UTC\)$", out, re.MULTILINE)


def test_all_runs_is_the_default(capsys, target):
    assert run(capsys, "--target", str(target.profile)) == run(capsys, "--target", str(target.profile), "--all-runs")


def test_run_id_selects_one_run(capsys, target):
    status, out, _ = run(capsys, "--target", str(target.profile), "--run-id", "4d5e6f")
    assert status == 0
    assert table_ids(out) == [target.ids[n] for n in sorted(RUN_B)]
    assert "pass --yes to delete these 2 tokens" in out


def test_run_id_is_read_case_insensitively(capsys, target):
    status, out, _ = run(capsys, "--target", str(target.profile), "--run-id", "1A2B3C")
    assert status == 0
    assert table_ids(out) == [target.ids[n] for n in sorted(RUN_A)]
    assert str(target.ids["stsct-1A2B3C-upper-run"]) not in out


def test_nothing_to_clean(capsys, target):
    status, out, _ = run(capsys, "--target", str(target.profile), "--run-id", "abcdef", "--yes")
    assert status == 0
    assert "nothing to clean" in out and "stsct-abcdef-" in out
    assert target.names() == sorted([*RUN_A, *RUN_B, *OTHERS, "bootstrap"])


def test_sts_target_names_the_profile(capsys, monkeypatch, target):
    monkeypatch.setenv(TARGET_ENV, str(target.profile))
    status, out, _ = run(capsys)
    assert status == 0
    assert len(table_ids(out)) == 5


# -- deleting -----------------------------------------------------------------------------


def test_yes_deletes_the_prefixed_tokens_and_leaves_the_others(capsys, target):
    status, out, err = run(capsys, "--target", str(target.profile), "--yes")
    assert status == 0, out + err
    assert err == ""
    assert target.names() == sorted([*OTHERS, "bootstrap"])
    for name in RUN_A + RUN_B:
        assert f"deleted       {target.ids[name]}  {name}" in out
    assert "done: 5 of 5 tokens removed (5 deleted, 0 already gone)" in out


def test_yes_with_run_id_deletes_only_that_run(capsys, target):
    status, out, _ = run(capsys, "--target", str(target.profile), "--run-id", "1a2b3c", "--yes")
    assert status == 0
    assert target.names() == sorted([*RUN_B, *OTHERS, "bootstrap"])
    assert "done: 3 of 3 tokens removed" in out


def test_ids_listed_as_strings_are_deleted(capsys, tmp_path):
    """A target that lists ids as JSON strings of digits: those ids are used in the delete path."""
    for t in _start(tmp_path, faults=("ids-listed-as-strings",)):
        assert all(isinstance(i["id"], str) for i in listed(t.server))
        status, out, err = run(capsys, "--target", str(t.profile), "--yes")
        assert status == 0, out + err
        assert t.names() == sorted([*OTHERS, "bootstrap"])


FAKE_URL = "http://target.test"


class FakeTarget:
    """A token API faked with respx: lists ``items``, answers deletes as told (204 by default).

    A 2xx or 404 answer removes the entry from the list (a 404: it went away between the list
    and the delete) unless ``deletes_take`` is false: a target that claims deletes it does not do.
    """

    def __init__(
        self,
        mock: respx.MockRouter,
        items: list[object],
        answers: dict[int, httpx.Response | Exception] | None = None,
        *,
        deletes_take: bool = True,
    ):
        self.items = list(items)
        self.answers = answers or {}
        self.deletes_take = deletes_take
        self.deleted: list[str] = []
        mock.get(f"{FAKE_URL}/api/server/status").mock(return_value=httpx.Response(200, json={}))
        mock.get(f"{FAKE_URL}/api/security/tokens").mock(side_effect=lambda _: httpx.Response(200, json=self.items))
        mock.delete(url__regex=rf"^{FAKE_URL}/api/security/tokens/[^/]+$").mock(side_effect=self._delete)

    def _delete(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.path.rsplit("/", 1)[1]
        self.deleted.append(raw)
        answer = self.answers.get(int(raw), httpx.Response(204))
        if isinstance(answer, Exception):
            raise answer
        if (answer.is_success or answer.status_code == 404) and self.deletes_take:
            self.items = [i for i in self.items if not (isinstance(i, dict) and str(i.get("id")) == raw)]
        return answer


def test_failing_deletes_are_reported_per_token_and_the_rest_continue(capsys, tmp_path):
    """500 and a dropped connection fail (exit 1, named); 404 is already gone; the others are deleted."""
    items: list[object] = [
        {"id": 11, "name": "stsct-1a2b3c-gw0-a-1", "roles": []},
        {"id": 12, "name": "stsct-1a2b3c-gw0-b-2", "roles": []},
        {"id": 13, "name": "stsct-1a2b3c-gw0-c-3", "roles": []},
        {"id": 14, "name": "stsct-1a2b3c-gw0-d-4", "roles": []},
        {"id": 15, "name": "stsct-1a2b3c-gw0-e-5", "roles": []},
        {"id": 99, "name": "not-ours", "roles": []},
        {"id": 98, "name": ["a", "list"], "roles": []},
    ]
    answers: dict[int, httpx.Response | Exception] = {
        12: httpx.Response(500, json={"_type": "ErrorsResponse"}),
        13: httpx.Response(404),
        14: httpx.ConnectError("connection refused"),
    }
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        fake = FakeTarget(mock, items, answers)
        status, out, err = run(capsys, "--target", str(profile), "--yes")
    assert status == 1
    assert fake.deleted == ["11", "12", "13", "14", "15"], "a failure stops nothing; only our ids are deleted"
    assert "deleted       11  stsct-1a2b3c-gw0-a-1" in out
    assert "FAILED        12  stsct-1a2b3c-gw0-b-2: answered 500" in out
    assert "already gone  13  stsct-1a2b3c-gw0-c-3 (404)" in out
    assert "FAILED        14  stsct-1a2b3c-gw0-d-4: no response (ConnectError)" in out
    assert "deleted       15  stsct-1a2b3c-gw0-e-5" in out
    assert "3 of 5 tokens removed (2 deleted, 1 already gone); 2 could not be deleted" in out
    assert err.count("\n") == 1 and err.startswith("sts-conformance-cleanup: 2 tokens named stsct-<run id>-…")
    assert "12 'stsct-1a2b3c-gw0-b-2' (answered 500)" in err
    assert "14 'stsct-1a2b3c-gw0-d-4' (no response (ConnectError))" in err


def test_a_delete_that_the_list_contradicts_is_a_failure(capsys, tmp_path):
    """A 204 while the token stays listed is not counted as deleted."""
    items: list[object] = [{"id": 21, "name": "stsct-1a2b3c-gw0-a-1", "roles": []}]
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        FakeTarget(mock, items, deletes_take=False)
        status, out, err = run(capsys, "--target", str(profile), "--yes")
    assert status == 1
    assert "STILL LISTED  21  stsct-1a2b3c-gw0-a-1" in out
    assert "0 of 1 token removed" in out
    assert "still listed after the delete" in err


def test_entries_without_a_usable_id_are_skipped_saying_so(capsys, tmp_path):
    """No id, a non-digit or float id, or an id also listed under a foreign name: skipped, named, never deleted."""
    items: list[object] = [
        {"name": "stsct-1a2b3c-gw0-noid-1", "roles": []},
        {"id": "12a", "name": "stsct-1a2b3c-gw0-badid-2", "roles": []},
        {"id": 3.5, "name": "stsct-1a2b3c-gw0-floatid-3", "roles": []},
        {"id": True, "name": "stsct-1a2b3c-gw0-boolid-4", "roles": []},
        {"id": "\u0663", "name": "stsct-1a2b3c-gw0-arabic-digit-5", "roles": []},
        {"id": 2**63, "name": "stsct-1a2b3c-gw0-too-big-6", "roles": []},
        {"id": 41, "name": "stsct-1a2b3c-gw0-shared-7", "roles": []},
        {"id": "41", "name": "someone-elses", "roles": []},
        {"id": "42", "name": "stsct-1a2b3c-gw0-ok-8", "roles": []},
        "not an object",
        {"id": 43},
    ]
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        fake = FakeTarget(mock, items)
        status, out, err = run(capsys, "--target", str(profile), "--yes")
    assert fake.deleted == ["42"]
    assert status == 1, "tokens that carry the prefix are still there"
    assert "skipped, cannot be deleted safely (7):" in out
    assert "stsct-1a2b3c-gw0-noid-1: no usable id (listed id: none)" in out
    for n in ("noid-1", "badid-2", "floatid-3", "boolid-4", "arabic-digit-5", "too-big-6", "shared-7"):
        assert f"stsct-1a2b3c-gw0-{n}" in out and f"stsct-1a2b3c-gw0-{n}" in err
    assert "id 41 is also listed under a name that is not selected" in out
    assert "deleted       42  stsct-1a2b3c-gw0-ok-8" in out
    assert "1 of 1 token removed (1 deleted, 0 already gone); 7 could not be deleted" in out


def test_dry_run_with_skipped_entries_is_still_done(capsys, tmp_path):
    items: list[object] = [{"id": "x", "name": "stsct-1a2b3c-gw0-badid-1", "roles": []}]
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        fake = FakeTarget(mock, items)
        status, out, _ = run(capsys, "--target", str(profile))
    assert status == 0 and fake.deleted == []
    assert "stsct-1a2b3c-gw0-badid-1: no usable id (listed id: 'x')" in out
    assert "dry run: nothing deleted; none of these can be deleted by id" in out


# -- secrets ------------------------------------------------------------------------------


def test_no_secret_in_the_output(capsys, tmp_path):
    """A target that lists secrets, a name that embeds one: masked; the admin token never shows."""
    for t in _start(tmp_path, faults=("list-leaks-secret",)):
        leaked = create(t.server, "stsct-1a2b3c-gw0-leaky-1", ["stackstate-guest"])
        create(t.server, f"stsct-1a2b3c-gw0-named-{leaked}", ["stackstate-guest"])
        assert any(i.get("token") == leaked for i in listed(t.server))
        outputs = [run(capsys, "--target", str(t.profile)), run(capsys, "--target", str(t.profile), "--yes")]
        for status, out, err in outputs:
            assert status == 0, out + err
            assert leaked not in out + err
            assert ADMIN not in out + err
        assert "stsct-1a2b3c-gw0-named-<secret:" in outputs[0][1]


def test_secrets_of_any_shape_listed_by_a_faulty_target_are_masked(capsys, tmp_path):
    """A listed secret that does not look like svctok-…, echoed in a name, is masked too."""
    secret = "plain-looking-secret-8f3a9c"
    items: list[object] = [
        {"id": 1, "name": "stsct-1a2b3c-gw0-a-1", "roles": [], "token": secret},
        {"id": 2, "name": f"stsct-1a2b3c-gw0-{secret}", "roles": [secret]},
    ]
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        FakeTarget(mock, items)
        status, out, err = run(capsys, "--target", str(profile))
    assert status == 0
    assert secret not in out + err
    assert out.count("<secret:") == 2


def test_control_and_direction_characters_in_names_are_escaped(capsys, tmp_path):
    items: list[object] = [{"id": 1, "name": "stsct-1a2b3c-gw0-\u202eevil\nnext\x1b[2J", "roles": []}]
    profile = write_profile(tmp_path / "m.yaml", FAKE_URL)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        FakeTarget(mock, items)
        status, out, _ = run(capsys, "--target", str(profile))
    assert status == 0
    assert "stsct-1a2b3c-gw0-\\u202eevil\\nnext\\x1b[2J" in out
    assert "\u202e" not in out and "\x1b" not in out


# -- a target that cannot be used: exit 4, one message, nothing deleted ---------------------


def _one_message(err: str, needle: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("sts-conformance-cleanup: ") and needle in err, err


def test_profile_with_a_bad_key(capsys, target):
    bad = write_profile(target.profile.parent / "bad.yaml", target.server.url, extra="bogus: 1\n")
    status, out, err = run(capsys, "--target", str(bad), "--yes")
    assert status == 4 and out == ""
    _one_message(err, "unknown key 'bogus'")
    assert len(target.names()) == len(target.ids)


@pytest.mark.parametrize(
    ("profile", "needle"),
    [
        pytest.param("name: t\nurl: http://127.0.0.1:9\n", "admin_token is required", id="no-admin-token"),
        pytest.param("name: t\nurl: http://127.0.0.1:9\nadmin_token: ${STS_NO_SUCH_VAR_X}\n", "not set", id="env"),
        pytest.param("name: t\n url: [\n", "not valid YAML", id="yaml"),
    ],
)
def test_broken_profiles(capsys, tmp_path, profile, needle):
    path = tmp_path / "t.yaml"
    path.write_text(profile)
    status, out, err = run(capsys, "--target", str(path))
    assert status == 4 and out == ""
    _one_message(err, needle)


def test_missing_profile_file(capsys, tmp_path):
    status, _, err = run(capsys, "--target", str(tmp_path / "missing.yaml"))
    assert status == 4
    _one_message(err, "missing.yaml: no such file")


def test_unreachable_target(capsys, tmp_path):
    from sts_conformance.target.connect import free_port

    path = write_profile(tmp_path / "t.yaml", f"http://127.0.0.1:{free_port()}")
    status, out, err = run(capsys, "--target", str(path), "--yes")
    assert status == 4 and out == ""
    _one_message(err, "is unreachable at")


def test_admin_credential_refused(capsys, target):
    path = write_profile(target.profile.parent / "wrong.yaml", target.server.url, token="wrong-admin-0123456789")
    status, out, err = run(capsys, "--target", str(path), "--yes")
    assert status == 4 and out == ""
    _one_message(err, "refused admin_token")
    assert "wrong-admin-0123456789" not in err
    assert len(target.names()) == len(target.ids)


def test_admin_credential_that_may_not_list_tokens(capsys, tmp_path):
    """A credential that authenticates but lacks the manager role: exit 4 before anything else."""
    guest = "guest-bootstrap-0123456789abcdef"
    spec = BootstrapSpec(token=guest, roles=["stackstate-guest"], ttl_ms=3_600_000)
    with running_server(auth_config=spec) as srv:
        path = write_profile(tmp_path / "t.yaml", srv.url, token=guest)
        status, out, err = run(capsys, "--target", str(path))
    assert status == 4 and out == ""
    _one_message(err, "may not list service tokens")
    assert "answered 403" in err and "stackstate-admin" in err
    assert guest not in err


def test_managed_profile_has_nothing_to_clean(capsys):
    status, out, err = run(capsys, "--target", str(ROOT / "fixtures" / "targets" / "reference.yaml"), "--yes")
    assert status == 0 and err == ""
    assert out.startswith("nothing to clean: target 'reference'") and "managed" in out


# -- arguments: argparse's usage errors, exit 2 --------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--run-id", "xyz123"], id="not-hex"),
        pytest.param(["--run-id", "1a2b3"], id="five-digits"),
        pytest.param(["--run-id", "1a2b3c4"], id="seven-digits"),
        pytest.param(["--run-id", "stsct-1a2b3c-"], id="a-prefix"),
        pytest.param(["--run-id", ""], id="empty"),
        pytest.param(["--run-id", "1a2b3c", "--all-runs"], id="both"),
        pytest.param(["--bogus"], id="unknown-option"),
    ],
)
def test_bad_arguments(capsys, tmp_path, args):
    path = write_profile(tmp_path / "t.yaml", "http://127.0.0.1:9")
    with pytest.raises(SystemExit) as exc:
        main(["--target", str(path), *args])
    assert exc.value.code == 2
    assert "usage: sts-conformance-cleanup" in capsys.readouterr().err


def test_no_target_is_a_usage_error_never_the_embedded_reference(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "no target: pass --target PROFILE or set STS_TARGET" in capsys.readouterr().err


# -- as installed -------------------------------------------------------------------------


def test_the_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("sts-conformance-cleanup") == "sts_conformance.tokens.cleanup:main"


def test_runs_as_a_module_in_a_subprocess(target):
    env = {k: v for k, v in os.environ.items() if k != TARGET_ENV}
    env[ADMIN_ENV] = ADMIN
    args = ["--target", str(target.profile), "--run-id", "4d5e6f", "--yes"]
    done = subprocess.run(
        [sys.executable, "-m", "sts_conformance.tokens.cleanup", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: 2 of 2 tokens removed" in done.stdout
    assert target.names() == sorted([*RUN_A, *OTHERS, "bootstrap"])
