"""Target profiles: defaults, every documented key, and one clear error per broken file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sts_conformance.checking import fleet
from sts_conformance.core.errors import ProfileError
from sts_conformance.target.profile import DEFAULT_PROFILE, load_profile, parse_profile, resolve_profile_path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "targets"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "target.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_reference_profile_is_managed_with_defaults():
    """The embedded default launches the reference and accepts every open behaviour."""
    p = load_profile(DEFAULT_PROFILE)
    assert p.managed and "{port}" in p.url
    assert p.manager_role == "stackstate-admin" and p.unprivileged_role == "stackstate-guest"
    assert p.expect.unauthenticated_status == (401, 403)
    assert p.expect.duplicate_names == "either"
    assert p.probe_path == "/api/server/status"


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("*.yaml")) + sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name
)
def test_every_shipped_example_profile_parses(path, monkeypatch):
    """Each documented example under fixtures/targets/ is a valid profile."""
    monkeypatch.setenv("STS_ADMIN_TOKEN", "example-admin-token")
    monkeypatch.setenv("STS_BOOTSTRAP_TOKEN", "example-bootstrap-token")
    monkeypatch.setenv("STS_REAL_CLI", "/opt/sts/bin/sts")
    profile = load_profile(path)
    assert profile.name


def test_staging_example_needs_only_the_variables_the_readme_exports(monkeypatch):
    """The README's staging example exports STS_ADMIN_TOKEN only: that is all the profile may need."""
    import re

    readme = (FIXTURES.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Running against a deployment") :]
    block = block[: block.index("staging.example.yaml\n")]
    exported = set(re.findall(r"^export (\w+)=", block, re.MULTILINE))
    text = (FIXTURES / "staging.example.yaml").read_text(encoding="utf-8")
    used = {
        m for line in text.splitlines() if not line.lstrip().startswith("#") for m in re.findall(r"\$\{(\w+)\}", line)
    }
    assert used == exported == {"STS_ADMIN_TOKEN"}
    for name in ("STS_BOOTSTRAP_TOKEN", "STS_REAL_CLI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STS_ADMIN_TOKEN", "example-admin-token")
    assert load_profile(FIXTURES / "staging.example.yaml").admin_token == "example-admin-token"


def test_resolution_order_option_then_env_then_default():
    """--target beats STS_TARGET, which beats the embedded reference."""
    assert resolve_profile_path("a.yaml", {"STS_TARGET": "b.yaml"}) == Path("a.yaml")
    assert resolve_profile_path(None, {"STS_TARGET": "b.yaml"}) == Path("b.yaml")
    assert resolve_profile_path(None, {}) == DEFAULT_PROFILE


def test_env_references_are_expanded_and_kept_out_of_redacted_view():
    """${VAR} in admin_token is expanded; the redacted profile says only that it is set."""
    p = parse_profile(
        {"name": "staging", "url": "https://sts.example", "admin_token": "${TOK}"}, environ={"TOK": "s3cr3t-value"}
    )
    assert p.admin_token == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(p)
    assert p.redacted()["admin_token"] == "<set>"
    assert "s3cr3t-value" not in str(p.redacted())


def test_pinned_expectations_are_read():
    """A profile can pin what the documentation leaves open."""
    p = parse_profile(
        {
            "name": "t",
            "url": "http://h",
            "admin_token": "abcdefgh",
            "expect": {
                "unauthenticated_status": 401,
                "forbidden_status": [403],
                "delete_unknown_status": [404],
                "duplicate_names": "allowed",
                "roles_compare": "exact",
            },
            "known_deviations": [{"requirement": "ST-LIFE-008", "reason": "answers 500"}],
        },
        environ={},
    )
    assert p.expect.unauthenticated_status == (401,)
    assert p.expect.forbidden_status == (403,)
    assert p.expect.delete_unknown_status == (404,)
    assert p.expect.duplicate_names == "allowed"
    assert p.expect.roles_compare == "exact"
    assert p.known_deviations[0].requirement == "ST-LIFE-008"


def test_fail_on_inconclusive_is_a_boolean_setting():
    base = {"name": "t", "url": "http://h", "admin_token": "abcdefgh"}
    assert parse_profile(base, environ={}).fail_on_inconclusive is False
    p = parse_profile({**base, "fail_on_inconclusive": True}, environ={})
    assert p.fail_on_inconclusive is True and p.redacted()["fail_on_inconclusive"] is True
    with pytest.raises(ProfileError, match="fail_on_inconclusive must be true or false"):
        parse_profile({**base, "fail_on_inconclusive": "yes"}, environ={})


def test_known_deviation_may_name_one_check():
    """An entry names a requirement, one check (node id, name or parameter id), or both."""
    p = parse_profile(
        {
            "name": "t",
            "url": "http://h",
            "admin_token": "abcdefgh",
            "known_deviations": [
                {"requirement": "ST-CLI-013", "check": "zero-date", "reason": "zero date: no expiry"},
                {"check": "suites/test_x.py::test_y[a]", "reason": "r"},
            ],
        },
        environ={},
    )
    first, second = p.known_deviations
    assert (first.requirement, first.check, first.label()) == (
        "ST-CLI-013",
        "zero-date",
        "ST-CLI-013 (check zero-date)",
    )
    assert (second.requirement, second.check) == (None, "suites/test_x.py::test_y[a]")
    assert p.redacted()["known_deviations"][0] == first.as_dict()


BROKEN = [
    pytest.param("name: [unclosed\n", "not valid YAML at line", id="not-yaml"),
    pytest.param("- a\n- b\n", "expected a mapping", id="top-level-list"),
    pytest.param("url: http://h\nadmin_token: x\n", "name is required", id="name-missing"),
    pytest.param("name: t\nadmin_token: x\n", "url is required", id="url-missing"),
    pytest.param("name: t\nurl: ftp://h\nadmin_token: x\n", "url must start with http", id="url-scheme"),
    pytest.param("name: t\nurl: http://h\n", "admin_token is required", id="external-without-admin-token"),
    pytest.param("name: t\nurl: http://h:{port}\nadmin_token: x\n", "no launch command", id="port-without-launch"),
    pytest.param("name: t\nurl: http://h\nadmin_token: ${NOPE_UNSET}\n", "NOPE_UNSET", id="env-unset"),
    pytest.param("name: t\nurl: http://h\nadmin_token: x\ncolour: red\n", "unknown key 'colour'", id="unknown-key"),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nexpect: {duplicate_names: maybe}\n",
        "expect.duplicate_names must be one of",
        id="bad-choice",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nexpect: {unauthenticated_status: [200, 'x']}\n",
        "expect.unauthenticated_status must be an HTTP status",
        id="bad-status",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nprobe_path: api/x\n", "probe_path must start", id="probe-path"
    ),
    pytest.param("name: t\nurl: http://h\nadmin_token: x\nlaunch_timeout: -1\n", "launch_timeout", id="timeout"),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nknown_deviations: [{requirement: ST-LIFE-001}]\n",
        "needs a non-empty 'reason'",
        id="deviation-without-reason",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nknown_deviations: [{reason: r}]\n",
        "needs a 'requirement' id or a 'check'",
        id="deviation-names-nothing",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nknown_deviations: [{check: a, reason: r, case: b}]\n",
        "unknown key(s) case",
        id="deviation-unknown-key",
    ),
    pytest.param("name: t\nurl: http://h\nadmin_token: x\nroles: {boss: a}\n", "roles.boss", id="roles-unknown-key"),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nbootstrap: {key_spellings: [ServiceToken]}\n",
        "bootstrap.key_spellings must list",
        id="key-spelling-unknown",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nbootstrap: {key_spellings: []}\n",
        "bootstrap.key_spellings must list",
        id="key-spellings-empty",
    ),
    pytest.param(
        "name: t\nurl: http://h\nadmin_token: x\nscale_on_external: yes please\n",
        "scale_on_external must be true or false",
        id="scale-not-a-boolean",
    ),
    pytest.param(
        "name: t\nurl: http://h:{port}\nlaunch: run {port}\nscale_on_external: true\n",
        "scale_on_external is for an external target",
        id="scale-on-a-managed-target",
    ),
    *(
        pytest.param(
            f"name: t\nurl: http://h\nadmin_token: x\nconcurrency: {bad}\n",
            "concurrency must be a whole number from 1 to 64",
            id=f"concurrency-{bad}",
        )
        for bad in ("0", "65", "2.5", "true", "many")
    ),
]


def test_concurrency_defaults_to_eight_and_one_is_allowed(tmp_path):
    """The bound on requests in flight: 8 unless set; 1 sends one request at a time."""
    assert load_profile(DEFAULT_PROFILE).concurrency == 8
    path = _write(tmp_path, "name: t\nurl: http://h\nadmin_token: x\nconcurrency: 1\n")
    assert load_profile(path, environ={}).concurrency == 1


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_profile_gives_one_message_naming_the_key(tmp_path, text, message):
    """Every broken profile raises ProfileError naming the file and what is wrong."""
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        load_profile(path, environ={})
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_profile_file(tmp_path):
    """A profile path that does not exist is named in the error."""
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "nope.yaml")


def test_json_profile_is_valid(tmp_path):
    """JSON is valid YAML, so a JSON profile works too."""
    path = tmp_path / "t.json"
    path.write_text('{"name": "j", "url": "http://h", "admin_token": "abcdefgh"}')
    assert load_profile(path).name == "j"


@pytest.mark.parametrize(
    ("expect", "allowed"),
    [
        ("{}", (400, 401, 403)),
        ("{unauthenticated_status: 401}", (400, 401)),
        ("{unauthenticated_status: 401, malformed_status: [401]}", (401,)),
        ("{malformed_status: 400}", (400,)),
    ],
    ids=["default", "follows-unauthenticated", "pinned", "pinned-400"],
)
def test_missing_or_malformed_credential_may_get_400_unless_pinned(tmp_path, expect, allowed):
    """No credential, or one the target cannot parse, may be a bad request (400) as well as a refusal."""
    p = load_profile(_write(tmp_path, f"name: t\nurl: http://h\nadmin_token: x\nexpect: {expect}\n"))
    assert p.expect.malformed_statuses() == allowed
    assert p.redacted()["expect"]["malformed_status"] == list(allowed)


@pytest.mark.parametrize(
    ("text", "spellings"),
    [
        pytest.param("launch: run {port}\nurl: http://h:{port}\n", ("serviceToken", "servicetoken"), id="managed"),
        pytest.param("url: http://h\nadmin_token: x\n", ("serviceToken",), id="external"),
        pytest.param(
            "url: http://h\nadmin_token: x\nbootstrap: {key_spellings: [serviceToken, servicetoken]}\n",
            ("serviceToken", "servicetoken"),
            id="external-asks",
        ),
    ],
)
def test_bootstrap_key_spellings_default_by_kind_of_target(tmp_path, text, spellings):
    """The lower-case key is checked on the suite's own launch; on a deployment only when the profile asks."""
    profile = load_profile(_write(tmp_path, "name: t\n" + text), environ={})
    assert profile.bootstrap.key_spellings == spellings
    assert ("servicetoken" in spellings) == any(i.key == "servicetoken" for i in fleet.plan(profile))


def test_the_list_scale_check_is_off_on_an_external_target_unless_allowed(tmp_path):
    """An external deployment runs the ~1,000-token list check only when its profile allows the cost."""
    external = "name: t\nurl: http://h\nadmin_token: x\n"
    assert load_profile(_write(tmp_path, external), environ={}).scale_on_external is False
    allowed = load_profile(_write(tmp_path, external + "scale_on_external: true\n"), environ={})
    assert allowed.scale_on_external is True
    assert allowed.redacted()["scale_on_external"] is True
