"""Named variants: each switches the reference to another correct choice, and really does.

Every variant has a check: a short scenario against a server started in-process with a fake
clock, which says whether the server made the variant's choice. The reference without
variants fails every check (it makes the other choice); with the variant switched on, the
server passes its check and still answers the basic calls as documented (a variant is not
a defect). Whether the conformance suites accept each variant is the suites' question.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sts_reference.__main__ import main
from sts_reference.clock import FakeClock
from sts_reference.infra import RATE_LIMIT_EVERY
from sts_reference.lag import BOOTSTRAP_DELAY_MS, LIST_LAG_MS, REVOCATION_LAG_MS
from sts_reference.store import TokenRecord
from sts_reference.testing import RunningServer
from sts_reference.variants import VARIANTS, VariantSet

from .support import ADMIN, DAY_MS, START_MS, Api, StartServer, VendorSchemas, http_client, unique_name

GUEST = "stackstate-guest"
#: longer than any lag of the lagging variants (lag.py), on the server's clock
CATCH_UP_MS = max(LIST_LAG_MS, REVOCATION_LAG_MS, BOOTSTRAP_DELAY_MS)
UNKNOWN_ID = 123_456_789


@dataclass
class Lab:
    """One check's world: a server with the variants (and faults) under test."""

    clock: FakeClock
    api: Api

    def expiring_token(self, roles: list[str], lifetime_ms: int = 1000) -> tuple[int, str]:
        return self.api.new_token(roles, expiry=self.clock.now_ms() + lifetime_ms)

    def bootstrap_id(self) -> int:
        (record,) = [r for r in self.api.server.store.list() if r.bootstrap]
        return record.id


Check = Callable[[Lab], bool]
"""Runs a scenario against a lab and says whether the server made the variant's choice."""


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return [resp.status_code for resp in responses]


def _names(lab: Lab) -> list[str]:
    return [item["name"] for item in lab.api.listed()]


# -- refusals -----------------------------------------------------------------------------------


def unauthenticated_gets_403(lab: Lab) -> bool:
    """A missing, unknown, expired and deleted token: 403, on status and on a token call, with the usual JSON body."""
    _, expired = lab.expiring_token([GUEST])
    deleted_id, deleted = lab.api.new_token([GUEST])
    assert lab.api.delete(deleted_id).status_code == 204
    lab.clock.advance(2000)
    refusals = [
        lab.api.status({}),
        lab.api.status_with("no-such-token"),
        lab.api.status_with(expired),
        lab.api.status_with(deleted),
        lab.api.list_tokens(token="no-such-token"),
        lab.api.info(token=deleted),
    ]
    if _statuses(refusals) != [403] * len(refusals):
        return False
    for resp in refusals:
        lab.api.error_body(resp, 403)
        assert "www-authenticate" not in resp.headers
    return True


def forbidden_gets_401(lab: Lab) -> bool:
    """A guest token on each token call: 401 (with WWW-Authenticate); it still reads status."""
    target_id, guest = lab.api.new_token([GUEST])
    refusals = [
        lab.api.list_tokens(token=guest),
        lab.api.create({"name": unique_name(), "roles": []}, token=guest),
        lab.api.delete(target_id, token=guest),
    ]
    assert lab.api.status_with(guest).status_code == 200
    if _statuses(refusals) != [401, 401, 401]:
        return False
    for resp in refusals:
        lab.api.error_body(resp, 401)
        assert resp.headers["www-authenticate"] == "ApiKey"
    return True


def errors_in_plain_text(lab: Lab) -> bool:
    """401, 403 and 404 have text/plain bodies; the invalid-expiry 400 stays the documented JSON."""
    _, guest = lab.api.new_token([GUEST])
    refusals = [
        lab.api.status_with("no-such-token"),
        lab.api.list_tokens(token=guest),
        lab.api.delete(UNKNOWN_ID),
    ]
    assert _statuses(refusals) == [401, 403, 404]
    past = lab.api.create({"name": unique_name(), "roles": [], "expiryDate": START_MS - 1})
    lab.api.error_body(past, 400, "ServiceTokenInvalidExpiryError")
    return all(resp.headers["content-type"].startswith("text/plain") and resp.text for resp in refusals)


def scheme_word_case_sensitive(lab: Lab) -> bool:
    """'ApiKey' works; 'apikey' and 'APIKEY' do not (X-API-Key still does)."""
    assert lab.api.status({"Authorization": f"ApiKey {ADMIN.token}"}).status_code == 200
    assert lab.api.status({"X-API-Key": ADMIN.token}).status_code == 200
    others = [lab.api.status({"Authorization": f"{word} {ADMIN.token}"}) for word in ("apikey", "APIKEY")]
    return _statuses(others) == [401, 401]


# -- the list and deleting ----------------------------------------------------------------------


def expired_tokens_hidden(lab: Lab) -> bool:
    """An expired token leaves the list but still exists: deleting it by id answers 204."""
    name = unique_name("expiring")
    assert lab.api.create({"name": name, "roles": [GUEST], "expiryDate": START_MS + 1000}).status_code == 200
    token_id = lab.api.by_name(name)["id"]
    lab.clock.advance(2000)
    hidden = name not in _names(lab)
    assert lab.api.server.store.get(token_id) is not None
    return hidden and lab.api.delete(token_id).status_code == 204


def expired_tokens_purged(lab: Lab) -> bool:
    """An expired token leaves the list and the store; deleting it answers 404."""
    token_id, _ = lab.expiring_token([GUEST])
    live_id, _ = lab.api.new_token([GUEST])
    lab.clock.advance(2000)
    ids = [item["id"] for item in lab.api.listed()]
    assert live_id in ids
    gone = token_id not in ids and lab.api.server.store.get(token_id) is None
    return gone and lab.api.delete(token_id).status_code == 404


def unknown_id_delete_answers_204(lab: Lab) -> bool:
    resp = lab.api.delete(UNKNOWN_ID)
    return resp.status_code == 204 and resp.content == b""


def bootstrap_not_listed_nor_deletable(lab: Lab) -> bool:
    """The bootstrap token is not listed, deleting it answers 404, and it keeps working."""
    boot_id = lab.bootstrap_id()
    unlisted = "bootstrap" not in _names(lab) and boot_id not in [item["id"] for item in lab.api.listed()]
    if not (unlisted and lab.api.delete(boot_id).status_code == 404):
        return False
    return lab.api.status_with(ADMIN.token).status_code == 200


def listed_newest_first(lab: Lab) -> bool:
    first, second = unique_name("first"), unique_name("second")
    for name in (first, second):
        assert lab.api.create({"name": name, "roles": [GUEST]}).status_code == 200
    return _names(lab) == [second, first, "bootstrap"]


# -- creating -----------------------------------------------------------------------------------


def duplicate_names_refused(lab: Lab) -> bool:
    """A second token named like a live one: 409, nothing created. Once the first has expired
    the name is free again."""
    name = unique_name("twin")
    assert lab.api.create({"name": name, "roles": [GUEST], "expiryDate": START_MS + 1000}).status_code == 200
    again = lab.api.create({"name": name, "roles": [GUEST]})
    if again.status_code != 409 or _names(lab).count(name) != 1:
        return False
    lab.api.error_body(again, 409)
    lab.clock.advance(2000)
    return lab.api.create({"name": name, "roles": [GUEST]}).status_code == 200


def empty_roles_refused(lab: Lab) -> bool:
    name = unique_name("no-roles")
    resp = lab.api.create({"name": name, "roles": []})
    return resp.status_code == 400 and name not in _names(lab)


def unknown_roles_refused(lab: Lab) -> bool:
    """Unknown roles (case counts) get 400; every predefined role is accepted."""
    predefined = [
        "stackstate-admin",
        "stackstate-power-user",
        "stackstate-k8s-troubleshooter",
        "stackstate-guest",
        "stackstate-k8s-admin",
    ]
    assert lab.api.create({"name": unique_name(), "roles": predefined}).status_code == 200
    refused = [
        lab.api.create({"name": unique_name(), "roles": roles}) for roles in (["nope"], [GUEST, "Stackstate-Guest"])
    ]
    return _statuses(refused) == [400, 400]


def names_at_most_64(lab: Lab) -> bool:
    assert lab.api.create({"name": "n" * 64, "roles": [GUEST]}).status_code == 200
    return lab.api.create({"name": "n" * 65, "roles": [GUEST]}).status_code == 400


def ids_beyond_doubles(lab: Lab) -> bool:
    """New tokens' ids lie past 2^53, listed as exact JSON integers, and each deletes exactly its token."""
    made = [lab.api.new_token([GUEST])[0] for _ in range(3)]
    if not all(isinstance(tid, int) and 2**53 < tid < 2**63 for tid in made):
        return False
    assert lab.api.delete(made[1]).status_code == 204
    return {item["id"] for item in lab.api.listed()} >= {made[0], made[2]}


def ids_sequential(lab: Lab) -> bool:
    """The bootstrap token is 1, the next tokens 2, 3, 4; after deleting 4 the next is 5."""
    made = [lab.api.new_token([GUEST])[0] for _ in range(3)]
    if [lab.bootstrap_id(), *made] != [1, 2, 3, 4]:
        return False
    assert lab.api.delete(4).status_code == 204
    return lab.api.new_token([GUEST])[0] == 5


def ids_reused_after_delete(lab: Lab) -> bool:
    """New tokens take the smallest free id: after deleting one, the next token gets its id."""
    made = [lab.api.new_token([GUEST])[0] for _ in range(3)]
    assert lab.api.delete(made[1]).status_code == 204
    return made == [1, 2, 3] and lab.api.new_token([GUEST])[0] == made[1]


def secrets_hex(lab: Lab) -> bool:
    made = [lab.api.new_token([GUEST])[1] for _ in range(3)]
    return all(re.fullmatch(r"[0-9a-f]{64}", secret) for secret in made) and len(set(made)) == 3


# -- what real infrastructure does (issue 18; sts_reference/infra.py) ----------------------------


def answers_gzipped(lab: Lab) -> bool:
    """With Accept-Encoding: gzip the list comes gzip-compressed (and decodes to the list); without, plain."""
    key = lab.api.key(lab.api.manager_token)
    zipped = lab.api.http.get("/api/security/tokens", headers={**key, "Accept-Encoding": "gzip"})
    plain = lab.api.http.get("/api/security/tokens", headers={**key, "Accept-Encoding": "identity"})
    assert zipped.json() == plain.json()
    return zipped.headers.get("content-encoding") == "gzip" and "content-encoding" not in plain.headers


def unused_methods_not_implemented(lab: Lab) -> bool:
    """OPTIONS and PUT get 501 on a token path; the documented methods are served as before."""
    key = lab.api.key(lab.api.manager_token)
    options = lab.api.http.request("OPTIONS", "/api/security/tokens", headers=key)
    put = lab.api.http.request("PUT", "/api/security/tokens/1", headers=key)
    listed = lab.api.http.get("/api/security/tokens", headers=key)
    return options.status_code == 501 and put.status_code == 501 and listed.status_code == 200


def rate_limited(lab: Lab) -> bool:
    """Some creates get 429 with nothing done for them; each 200 made exactly one token."""
    names = [unique_name("rl") for _ in range(2 * RATE_LIMIT_EVERY)]
    with http_client(lab.api.server.url) as plain:  # no retries: every 429 is seen
        answers = [
            plain.post(
                "/api/security/tokens", json={"name": n, "roles": []}, headers=lab.api.key(lab.api.manager_token)
            )
            for n in names
        ]
    listed = set(_names(lab))
    throttled = [n for n, r in zip(names, answers, strict=True) if r.status_code == 429]
    assert all(r.status_code in (200, 429) for r in answers), _statuses(answers)
    assert not listed & set(throttled), "a throttled create made a token"
    assert all(n in listed for n, r in zip(names, answers, strict=True) if r.status_code == 200)
    return len(throttled) >= 1


def optional_fields_null(lab: Lab) -> bool:
    """A token without expiry: the create answer and its list entry say "expiration": null."""
    name = unique_name("null")
    created = lab.api.create({"name": name, "roles": [GUEST]})
    item = lab.api.by_name(name)
    return (
        "expiration" in created.json()
        and created.json()["expiration"] is None
        and all(k in item and item[k] is None for k in ("expiration", "description", "dedicatedSubject"))
    )


def malformed_credential_400(lab: Lab) -> bool:
    """An empty or unparseable credential gets 400; a well-formed unknown one is still 401."""
    malformed = [
        lab.api.status({"X-API-Key": "two words"}),
        lab.api.status({"X-API-Key": ""}),
        lab.api.status({"Authorization": "ApiKey"}),
        lab.api.status({"Authorization": "ApiKey a;b"}),
    ]
    assert lab.api.status_with("no-such-token").status_code == 401
    assert lab.api.status({"Authorization": "Bearer x y"}).status_code == 401  # another scheme is not parsed
    return _statuses(malformed) == [400] * len(malformed)


def session_cookie_honoured(lab: Lab) -> bool:
    """An accepted call sets a session cookie; the cookie alone then authenticates as that token, until it is
    deleted; a credential in the request wins over the cookie."""
    token_id, guest = lab.api.new_token([GUEST])
    first = lab.api.status_with(guest)
    cookie = first.headers.get("set-cookie", "").split(";")[0]
    if not cookie:
        return False
    with http_client(lab.api.server.url) as plain:
        alone = plain.get("/api/server/status", headers={"Cookie": cookie})
        other = plain.get("/api/server/status", headers={"Cookie": cookie, "X-API-Key": "no-such-token"})
        assert lab.api.delete(token_id).status_code == 204
        after = plain.get("/api/server/status", headers={"Cookie": cookie})
    return (alone.status_code, other.status_code, after.status_code) == (200, 401, 401)


# -- a real deployment lags and has no Date header (issue 18) ------------------------------------


def list_shows_changes_late(lab: Lab) -> bool:
    """A new token is listed only once the replica has caught up (on the server's clock); a deleted one
    stays listed as long."""
    name = unique_name("lagging")
    assert lab.api.create({"name": name, "roles": [GUEST]}).status_code == 200
    shown_at_once = name in _names(lab)
    lab.clock.advance(LIST_LAG_MS)
    token_id = lab.api.by_name(name)["id"]
    assert lab.api.delete(token_id).status_code == 204
    kept_at_once = name in _names(lab)
    lab.clock.advance(LIST_LAG_MS)
    assert name not in _names(lab)
    return not shown_at_once and kept_at_once


def deleted_token_works_a_moment(lab: Lab) -> bool:
    """A deleted token that was in the authentication cache still works until the cache entry times out."""
    token_id, secret = lab.api.new_token([GUEST])
    assert lab.api.status_with(secret).status_code == 200
    assert lab.api.delete(token_id).status_code == 204
    works_at_once = lab.api.status_with(secret).status_code == 200
    lab.clock.advance(REVOCATION_LAG_MS)
    assert lab.api.status_with(secret).status_code == 401
    assert lab.api.info(token=secret).status_code == 401
    return works_at_once


def no_date_header(lab: Lab) -> bool:
    """No answer carries a Date header; the status call still tells the server's time in its body."""
    anonymous, status = lab.api.status({}), lab.api.status_with(ADMIN.token)
    assert status.json()["serverTimestamp"] == lab.clock.now_ms()
    return "date" not in anonymous.headers and "date" not in status.headers


def date_from_a_proxy_ahead(lab: Lab) -> bool:
    """The Date header runs 20 s ahead of the serverTimestamp, which is the server's own clock."""
    status = lab.api.status_with(ADMIN.token)
    assert status.json()["serverTimestamp"] == lab.clock.now_ms()
    date = email.utils.parsedate_to_datetime(status.headers["date"]).timestamp() * 1000
    return date - lab.clock.now_ms() >= 19_000


def _bootstrap_records(lab: Lab) -> list[TokenRecord]:
    return [r for r in lab.api.server.store.list() if r.bootstrap]


def bootstrap_token_written_late(lab: Lab) -> bool:
    """The bootstrap token is refused until the server's clock has moved on from its start; then it works,
    dated as written when it was due, however much later the first request after that comes."""
    at_once = lab.api.status_with(ADMIN.token).status_code
    lab.clock.advance(5 * BOOTSTRAP_DELAY_MS)
    assert lab.api.status_with(ADMIN.token).status_code == 200
    (record,) = _bootstrap_records(lab)
    return at_once == 401 and record.expiration == START_MS + BOOTSTRAP_DELAY_MS + ADMIN.ttl_ms


def bootstrap_stored_when_first_presented(lab: Lab) -> bool:
    """The bootstrap token is stored only once it is presented, and then expires at the start plus its ttl."""
    before = _bootstrap_records(lab)
    lab.clock.advance(DAY_MS)
    assert lab.api.status({}).status_code == 401  # (nothing but the bootstrap token itself stores it)
    assert lab.api.status_with(ADMIN.token).status_code == 200
    (record,) = _bootstrap_records(lab)
    return not before and record.expiration == START_MS + ADMIN.ttl_ms


CHECKS: dict[str, Check] = {
    "unauthenticated-403": unauthenticated_gets_403,
    "forbidden-401": forbidden_gets_401,
    "plain-text-errors": errors_in_plain_text,
    "scheme-case-sensitive": scheme_word_case_sensitive,
    "expired-hidden": expired_tokens_hidden,
    "expired-purged": expired_tokens_purged,
    "delete-unknown-204": unknown_id_delete_answers_204,
    "bootstrap-unlisted": bootstrap_not_listed_nor_deletable,
    "list-newest-first": listed_newest_first,
    "duplicate-names-refused": duplicate_names_refused,
    "empty-roles-refused": empty_roles_refused,
    "unknown-roles-refused": unknown_roles_refused,
    "names-max-64": names_at_most_64,
    "sequential-ids": ids_sequential,
    "ids-reused-after-delete": ids_reused_after_delete,
    "ids-beyond-2-53": ids_beyond_doubles,
    "hex-secrets": secrets_hex,
    "gzip": answers_gzipped,
    "rate-limit": rate_limited,
    "null-optional-fields": optional_fields_null,
    "malformed-credential-400": malformed_credential_400,
    "unused-methods-501": unused_methods_not_implemented,
    "session-cookies": session_cookie_honoured,
    "list-lag": list_shows_changes_late,
    "revocation-lag": deleted_token_works_a_moment,
    "no-date-header": no_date_header,
    "late-bootstrap-token": bootstrap_token_written_late,
    "bootstrap-stored-when-presented": bootstrap_stored_when_first_presented,
    "proxy-date-ahead": date_from_a_proxy_ahead,
}

#: variants whose bodies leave the vendor schemas' letter: that spec has no ``nullable``, yet a
#: Jackson server writes null for an unset field by default (issue 18: the documents leave it open)
OUTSIDE_VENDOR_SCHEMAS = {"null-optional-fields"}


class _Retry429(httpx.BaseTransport):
    """What any client of a rate-limited server does: send a throttled request again (the
    rate-limit variant's own check sends without it)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport(verify=False, trust_env=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(5):
            response = self._inner.handle_request(request)
            if response.status_code != 429:
                return response
            response.close()
        return response

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def make_lab(start_server: StartServer, vendor_or_none: VendorSchemas | None) -> Iterator[Callable[..., Lab]]:
    """Labs whose servers carry the given variants (and faults); all stop when the test ends.
    Success bodies are checked against the vendor schemas: a variant stays within them."""
    with contextlib.ExitStack() as stack:

        def make(variants: tuple[str, ...], faults: tuple[str, ...] = ()) -> Lab:
            clock = FakeClock(START_MS)
            server: RunningServer = start_server(clock=clock, variants=variants, faults=faults)
            http = stack.enter_context(httpx.Client(base_url=server.url, timeout=10, transport=_Retry429()))
            vendor = None if OUTSIDE_VENDOR_SCHEMAS & set(variants) else vendor_or_none
            return Lab(clock, Api(server, http, vendor=vendor))

        yield make


def test_every_variant_has_a_check() -> None:
    """The catalogue and the checks name the same variants."""
    assert sorted(CHECKS) == sorted(VARIANTS)


@pytest.mark.parametrize("variant", CHECKS)
def test_variant_makes_its_choice(make_lab: Callable[..., Lab], variant: str) -> None:
    """With the variant on, the server makes the variant's choice; the reference does not."""
    assert CHECKS[variant](make_lab((variant,))) is True, f"the server with {variant!r} does not behave so"
    assert CHECKS[variant](make_lab(())) is False, "the reference without variants already behaves so"


@pytest.mark.parametrize("variant", CHECKS)
def test_variant_server_answers_the_documented_calls(make_lab: Callable[..., Lab], variant: str) -> None:
    """A variant is not a defect: create (200), list, delete (204) and the new token work in
    both header forms, and a past expiry is the documented 400."""
    lab = make_lab((variant,))
    lab.clock.advance(CATCH_UP_MS)  # (the lagging variants show each change once their lag has passed)
    for api in (lab.api, lab.api.using_authorization_header()):
        name = unique_name("basic")
        created = api.create({"name": name, "roles": ["stackstate-admin"], "expiryDate": START_MS + DAY_MS})
        assert created.status_code == 200, created.text
        assert set(created.json()) == {"name", "token", "expiration"}
        secret = created.json()["token"]
        lab.clock.advance(CATCH_UP_MS)
        assert api.status_with(secret).status_code == 200
        assert api.info(token=secret).status_code == 200
        assert api.list_tokens(token=secret).status_code == 200
        (item,) = [item for item in api.listed() if item["name"] == name]
        assert item["roles"] == ["stackstate-admin"] and item["expiration"] == START_MS + DAY_MS
        assert api.delete(item["id"]).status_code == 204
        lab.clock.advance(CATCH_UP_MS)
        assert api.status_with(secret).status_code in (401, 403)
        assert name not in [item["name"] for item in api.listed()]
        past = api.create({"name": unique_name(), "roles": [GUEST], "expiryDate": START_MS - 1})
        api.error_body(past, 400, "ServiceTokenInvalidExpiryError")


def test_refusal_statuses_swap_when_both_variants_are_on(make_lab: Callable[..., Lab]) -> None:
    """unauthenticated-403 and forbidden-401 combine: each maps the reference's status, not the other's."""
    lab = make_lab(("unauthenticated-403", "forbidden-401"))
    _, guest = lab.api.new_token([GUEST])
    assert lab.api.status_with("no-such-token").status_code == 403
    assert lab.api.list_tokens(token=guest).status_code == 401


def test_variants_combine_with_faults(make_lab: Callable[..., Lab]) -> None:
    """A server can carry variants and faults at once: here plain-text errors that quote the token."""
    lab = make_lab(("plain-text-errors", "unauthenticated-403"), ("unauthorized-echoes-token",))
    presented = "not-a-token-" + "v" * 20
    resp = lab.api.status_with(presented)
    assert resp.status_code == 403 and resp.headers["content-type"].startswith("text/plain")
    assert presented in resp.text


def test_sequential_ids_are_not_reused_after_a_restart(start_server: StartServer, tmp_path: Path) -> None:
    """The counter behind sequential ids lives in the database: deleting the newest token and
    restarting does not hand its id out again."""
    db = tmp_path / "tokens.sqlite3"
    with contextlib.ExitStack() as stack:
        first = start_server(db_path=db, variants=("sequential-ids",))
        api = Api(first, stack.enter_context(http_client(first.url)))
        token_id, _ = api.new_token([GUEST])
        assert token_id == 2
        assert api.delete(token_id).status_code == 204
    with contextlib.ExitStack() as stack:
        second = start_server(db_path=db, variants=("sequential-ids",))
        api = Api(second, stack.enter_context(http_client(second.url)))
        assert api.new_token([GUEST])[0] == 3


def test_variant_catalogue_entries_are_one_line_descriptions() -> None:
    """Each variant has a kebab-case name and a one-line description for the variants command."""
    for name, description in VARIANTS.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert description and "\n" not in description


def test_variant_set_refuses_unknown_names_listing_known_ones() -> None:
    """A misspelt variant is an error naming the known variants."""
    with pytest.raises(ValueError, match="unknown variant") as caught:
        VariantSet(["hex-secrets", "hex-secret"])
    assert str(caught.value).startswith("unknown variant(s): hex-secret;")
    for name in VARIANTS:
        assert name in str(caught.value)
    assert VariantSet("hex-secrets").on("hex-secrets") and not VariantSet(()).on("sequential-ids")
    with pytest.raises(KeyError, match="no variant named"):
        VariantSet(()).on("delete-not-revoking")  # a fault's name is not a variant's


def test_variants_command_lists_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    """``variants`` prints one line per variant: its name, then its description."""
    assert main(["variants"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(VARIANTS)
    for line, (name, description) in zip(lines, VARIANTS.items(), strict=True):
        assert line.startswith(name + " ") and line.endswith(description)


def test_serve_refuses_an_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    """``serve --variant`` with a name not in the catalogue exits 2, listing the known ones."""
    assert main(["serve", "--port", "0", "--variant", "hex-secret"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown variant 'hex-secret'" in captured.err
    for name in VARIANTS:
        assert name in captured.err
