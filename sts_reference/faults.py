"""Deliberate, named defects the reference server can be started with.

Each fault is a small, plausible bug of the kind a code review lets through, switched on
at one decision point in the server's code (``if faults.on("name"):``). The faithful server
runs with no faults; the conformance suite's own tests start broken variants to prove that
the suite notices each defect.

To add a fault: add an entry to ``FAULTS`` (name: one line saying what goes wrong) and
consult it where the faithful behaviour is decided.
"""

from __future__ import annotations

from .switches import NameSet

FAULTS: dict[str, str] = {
    # -- presenting and comparing a token ---------------------------------------------------
    "x-api-key-ignored": "the X-API-Key header is not read; only Authorization: ApiKey works",
    "any-auth-scheme": (
        "the scheme word of the Authorization header is not checked: 'Bearer <T>', 'ApiToken <T>' "
        "or any other word presents a service token"
    ),
    "x-api-token-accepted": "a token in the personal-token header X-API-Token is looked up as a service token too",
    "token-prefix-match": (
        "secrets are looked up with a prefix match (LIKE 'x%'): the first 8 or more characters of a "
        "live secret authenticate as that token"
    ),
    "token-cut-to-length": (
        "the presented token is cut to the length of a generated secret before the lookup, so "
        "characters appended to a real token are ignored"
    ),
    "token-case-insensitive": "secrets are compared without regard to case (a case-insensitive lookup)",
    "status-public": "server/status answers 200 to a request without any credential, like a public health check",
    "server-info-public": "server/info answers 200 to a request without any credential, like a public version endpoint",
    # issue 23 item 6: a credential anywhere but the two documented headers
    "query-api-key-accepted": (
        "a gateway in front of the API moves an 'api_key' query parameter into X-API-Key, so a token "
        "in the URL (logged by every proxy on the way) authenticates"
    ),
    "basic-auth-password-accepted": (
        "'Authorization: Basic' is decoded and its password looked up as a service token, whatever the user name"
    ),
    "json-body-token-accepted": (
        "a request without a credential header whose JSON body carries a 'token' field is authenticated by it"
    ),
    "session-outlives-delete": (
        "the session cookie set on an accepted call keeps the token it was made for, so the cookie alone "
        "still authenticates after that token is deleted"
    ),
    "session-outlives-expiry": (
        "the session cookie set on an accepted call is never checked against the token's expiry, so the "
        "cookie alone still authenticates after the token expired"
    ),
    # -- revoking, ids and the list ---------------------------------------------------------
    "delete-not-revoking": ("DELETE removes the token from the list but a cached copy keeps authenticating"),
    "delete-removes-next": (
        "DELETE finds the id's place in creation order and removes the token one place after it "
        "(the right one only when it is the newest)"
    ),
    "delete-by-name": "DELETE removes every token that has the addressed token's name, not only that id",
    "delete-answers-200": "DELETE answers 200 with a small JSON body instead of 204 without a body",
    "id-reused-after-delete": (
        "a new token's id is the number of stored tokens plus one, so after a delete it collides "
        "with a live token's id and the create fails with 500"
    ),
    "id-race-on-concurrent-create": (
        "a new token's id is the last id issued plus one, a counter read and updated around an await "
        "without a lock, so tokens created at the same moment get one id and all but one create fails with 500"
    ),
    "ids-listed-as-strings": "the list renders ids as JSON strings instead of integers",
    "roles-string-accepted": (
        "a roles value that is a single string is taken as a one-role list (lenient coercion) instead of refused"
    ),
    "roles-missing-defaults-empty": "a create without roles is accepted as a token with no roles",
    "malformed-json-500": "a body that is not valid JSON raises an unhandled parse error: 500 instead of 400",
    # -- expiry -----------------------------------------------------------------------------
    "expiry-seconds-as-ms": (
        "expiryDate is compared as epoch seconds, so past dates are accepted and "
        "tokens never expire (the value is still echoed and listed as sent)"
    ),
    "expiry-grace-period": "a clock-skew leeway: a token is still accepted for 30 s after it expires",
    "expiry-truncated-to-seconds": (
        "expiryDate is stored as whole epoch seconds, so the expiration echoed and listed loses its milliseconds"
    ),
    "past-expiry-accepted": (
        "the create does not check that expiryDate lies ahead: a past expiry makes an already expired token"
    ),
    "past-expiry-stored-anyway": (
        "a past expiryDate is refused with 400 only after the token was stored, so the refused token is listed"
    ),
    "invalid-expiry-generic-error": (
        "a past expiryDate is refused with 400 but with the generic ErrorsResponse body instead of "
        "ServiceTokenInvalidExpiryError"
    ),
    "expiry-lenient-parsing": (
        "an expiryDate that is a date or date-time string, or a number with a fraction, is read "
        "leniently (dates as 00:00 UTC, fractions cut) instead of refused"
    ),
    "list-expiry-filter-inverted": (
        "the list means to hide expired tokens but the comparison is inverted: it leaves out tokens "
        "whose expiry lies ahead and shows expired ones"
    ),
    "management-ignores-expiry": (
        "token management (create, list, delete) checks the caller's roles but not its expiry; only "
        "server/status and server/info refuse an expired token"
    ),
    # -- the bootstrap token ----------------------------------------------------------------
    "bootstrap-ttl-ignored": "the bootstrap token is created without an expiry: its ttl is read but never applied",
    "ttl-unit-by-first-letter": ("a ttl's unit is recognised by its first letter, so '3000ms' is read as 3000 minutes"),
    "ttl-long-units-default": (
        "a ttl with a long unit name ('3 seconds', '2 minutes') is not understood and silently "
        "replaced by the 24h default"
    ),
    "bootstrap-roles-ignored": "the bootstrap token always gets stackstate-admin, whatever roles are configured",
    "servicetoken-key-ignored": (
        "only the serviceToken key is read; a bootstrap token under the seed document's "
        "servicetoken key is silently ignored"
    ),
    # -- roles ------------------------------------------------------------------------------
    "roles-case-insensitive": "role names are compared without regard to case, so STACKSTATE-ADMIN manages tokens",
    "only-first-role-counts": "only a token's first role is checked for the permission to manage tokens",
    "power-user-manages": (
        "stackstate-power-user may manage service tokens too (the permission set of older releases)"
    ),
    "empty-roles-unrestricted": "a token with an empty role list is treated as unrestricted and may manage tokens",
    # -- secrets and what responses show ----------------------------------------------------
    "list-leaks-secret": "list items carry the secret of tokens this process knows",
    "secret-from-name": (
        "the secret is a keyed hash of the token's name and roles, so the same name and roles give the same secret"
    ),
    "secret-time-based": (
        "secrets are time-based UUIDs (uuid1): most of each is shared with the next, the rest follows the clock"
    ),
    "server-info-echoes-token": "server/info adds the caller's credential to its body (a debug 'principal' field)",
    "unauthorized-echoes-token": "a 401 for an unknown, expired or deleted token quotes that token in its message",
    # -- names (fuzzed input) ---------------------------------------------------------------
    "names-trimmed": "names are stored with white space trimmed from both ends",
    "names-cut-at-64": "names longer than 64 characters are silently cut to 64",
    "long-names-500": (
        "a name longer than 255 characters overflows the name column: 500 instead of being stored or refused"
    ),
    "non-ascii-names-mangled": (
        "names are encoded as UTF-8 and decoded as Latin-1 on the way to storage, so non-ASCII names are listed garbled"
    ),
    # -- checks made on some calls but not on others ----------------------------------------
    "revocation-skipped-on-management": (
        "the token calls (list, create, delete) authenticate through a cache that DELETE does not "
        "invalidate, so a deleted manager token still manages tokens; server/status and server/info refuse it"
    ),
    "revocation-skipped-on-server-info": (
        "server/info authenticates through a cache that DELETE does not invalidate, so it accepts a "
        "deleted token; every other call refuses it"
    ),
    "list-ignores-expiry": "the list does not check the caller's expiry; create, delete, status and info do",
    "expiry-skipped-for-authorization-header": (
        "a token presented as 'Authorization: ApiKey <T>' is never checked for expiry (on any call); "
        "one in X-API-Key is"
    ),
    "delete-skips-role-check": (
        "DELETE checks that the caller is authenticated but not that it has the manager role: any "
        "token may delete any token"
    ),
    "list-skips-role-check": (
        "the list checks that the caller is authenticated but not that it has the manager role: any token may list"
    ),
    "forbidden-echoes-token": "a 403 quotes the presented token in its message",
    "error-header-echoes-token": "every 4xx answer carries the presented token in an X-Debug-Principal header",
    "status-echoes-token": "server/status adds the caller's token to its body (a debug 'principal' field)",
    "bootstrap-ttl-only-on-status": (
        "the bootstrap token's ttl is checked by server/status only: once expired it still works on "
        "server/info and on the token calls"
    ),
    "x-api-key-ignored-on-management": (
        "the token calls do not read X-API-Key (only 'Authorization: ApiKey' works there); server/status "
        "and server/info do"
    ),
    # -- calls a client or test harness relies on -------------------------------------------
    "create-answers-201": "a create answers 201 (with the same body) instead of the documented 200",
    "ids-collide-same-second": (
        "a token's id is derived from the second it was created in, so tokens created within one second "
        "are listed under one id, and deleting that id deletes them all"
    ),
    "list-stops-at-20": "the list silently answers only the first 20 tokens in creation order",
    # issue 23 item 4: caps and pages only a deployment with many tokens reaches
    "list-capped-at-100": "the list silently answers at most 100 tokens (a default page size), the oldest",
    "list-paged-at-1000": (
        "the list answers the first page of 1,000 tokens and says nothing of the rest (no link, no count)"
    ),
    "list-sorted-truncated": (
        "the list is sorted by name and cut at 1,000 entries (a LIMIT after ORDER BY name): tokens whose names "
        "sort late vanish once a deployment holds more"
    ),
    "create-500-after-storing": (
        "a failing hook after the create has stored the token answers 500 without the secret: the token "
        "exists and authenticates, but the client never learns it"
    ),
    "list-wrapped-in-object": 'the list answers {"items": [...]} instead of a JSON array',
    # -- issue 17: faithful to the real product (requirement sources, the probe, dedicatedSubject) --
    "dedicated-subject-empty-refused": (
        'a create carrying "dedicatedSubject": "" (what every sts CLI create sends) is refused with 400, '
        "as if the optional field had to name a subject once present"
    ),
    # -- issue 19 (h19paths): paths and methods beside the documented ones (aliases.py) ------
    "trailing-slash-skips-auth": (
        "GET /api/security/tokens/ (trailing slash) is a second route to the list that forgot the auth guard: "
        "anyone may list"
    ),
    "get-token-by-id-returns-secret": (
        "an undocumented GET /api/security/tokens/{id} answers a manager with the token, secret included"
    ),
    "method-override-skips-role-check": (
        "POST /api/security/tokens/{id} with X-HTTP-Method-Override (or X-Method-Override, ?_method) DELETE "
        "deletes after authenticating only: any valid token may delete any token"
    ),
    "options-500": "OPTIONS on a token path expects a CORS Origin header and answers 500 without one",
    # -- issue 19 (h19paths): ordinary mistakes answered with a server error ------------------
    "double-delete-500": "deleting an id a second time answers 500 (a tombstone is found, but no row)",
    "non-numeric-id-500": (
        "the id in a delete's path is converted unchecked: a non-numeric id answers 500, and so does one "
        "outside the 64-bit range"
    ),
    "many-roles-500": "a create with more than 8 roles overflows a fixed table of role slots: 500",
    "nul-in-name-500": "a NUL or other C0 control character in a name breaks the storage layer: 500",
    "create-binds-extra-id": (
        "an id in the create body is taken as the new token's id, replacing the token that had it (an upsert)"
    ),
    "create-binds-extra-token": "a token field in the create body becomes the new token's secret",
    # -- issue 19 (h19paths): secrets in disguise ---------------------------------------------
    "error-echoes-secret-prefix": "a 403 names the caller by the first 16 characters of its token",
    "list-leaks-base64-secret": "list items carry the base64 of the secret of tokens this process knows",
    # -- issue 19: what a token may do off the happy path (rights_faults.py) -----------------
    "role-substring-manages": (
        "a role that merely contains a manager role's name (stackstate-admin-readonly) grants token management"
    ),
    "role-comma-split": "a role holding a comma is stored as two roles, split at the comma",
    "sliding-expiry-on-use": (
        "each accepted use moves a token's expiry to that moment plus its original lifetime (an idle "
        "timeout); the list shows the original expiration"
    ),
    "use-cache-survives-delete": (
        "a token accepted once is cached for every later call and a delete does not empty that cache: a "
        "token used before its delete keeps working (one never used is refused)"
    ),
    "near-miss-secret-on-token-calls": (
        "the token calls (list, create, delete) retry an unknown secret without its last character, so a "
        "live token with one character appended manages tokens; server/status and server/info refuse it"
    ),
    "two-credentials-union": (
        "a request presenting several service tokens is let in when any one is live, with the roles of "
        "every presented token that is stored (expired ones too)"
    ),
    "bootstrap-delete-not-revoking": (
        "the bootstrap token is matched against the configuration when the store does not know it, so "
        "deleting it removes it from the list but it keeps authenticating with its configured roles"
    ),
    # -- issue 23: what the model of the documented behaviour catches --------------------------
    "expiry-from-first-use": (
        "a token's lifetime (its expiryDate less its creation) is counted from its first use, so a token "
        "first presented after its expiry is accepted (and then expires that lifetime later)"
    ),
    "tokens-die-with-their-maker": (
        "deleting a token also deletes every token it made (and those they made): tokens are tied to their maker"
    ),
    "list-shows-only-own-tokens": (
        "the list as a token other than the bootstrap token sees it holds only that token and the tokens it made"
    ),
    "far-expiry-wraps": (
        "an expiryDate past 9999-12-31 is echoed and listed as sent but judged through a date type that wraps: "
        "the token is refused as expired from its creation on"
    ),
    "duplicate-names-refused-after-first": (
        "a name a live token holds is accepted once more the first time; from then on such a create is refused "
        "with 409 (a uniqueness rule switched on by its first violation: the server changes its mind mid-run)"
    ),
    "ttl-days-read-as-hours": "a ttl in days ('7d', '2 days') is read as that many hours",
    # issue 23 items 2 and 3: every token on every call in both header forms; role lists at the edges
    "deleted-maker-manages-in-authorization": (
        "a token that made tokens keeps the grant they were made under when it is deleted: refused on "
        "server/status and server/info, but presented as 'Authorization: ApiKey' still let into the token calls"
    ),
    "roles-capped-at-32": (
        "a token keeps only the first 32 roles of its list (a fixed role column): the create answers 200 and "
        "the rest are dropped without a word"
    ),
    # issue 23 item 5 (h23boot): a ttl counts from when it was set
    "bootstrap-ttl-from-first-use": (
        "the bootstrap token's ttl is counted from its first use, not from the start (it is listed as expiring "
        "start plus ttl): one first presented after its ttl is accepted, and then expires a ttl later"
    ),
    # -- issue 24 (h24found): one defect under a foundation (the expiry round trip, anonymous refusal) --
    "expiry-stored-times-1000": (
        "expiryDate is checked as sent, then stored through a seconds-to-milliseconds conversion (x1000): "
        "the expiration echoed, listed and enforced is a thousand times later"
    ),
    "expiry-one-hour-late": (
        "expiryDate is checked as sent, then stored shifted by a one-hour time-zone offset: the expiration "
        "echoed, listed and enforced is an hour later than sent"
    ),
    "expiry-enforced-one-hour-late": (
        "the expiration is stored, echoed and listed as sent, but compared against a clock one hour "
        "behind (a local time read as UTC): a token keeps working for an hour after its expiry"
    ),
    "list-public": "the list call lost its auth guard: it answers anyone, with or without a credential, live or not",
    "delete-public": (
        "the delete call lost its auth guard: any request, with or without a credential, deletes the token it names"
    ),
    # -- issue 23 (h23red): defects of a class no issue had named (unnamed_faults.py) -------------
    "json-content-type-exact": (
        "a create is refused with 415 unless its Content-Type is exactly 'application/json': the same media "
        "type with a charset parameter ('application/json; charset=utf-8') is refused"
    ),
    "authorization-one-space-only": (
        "the credential of 'Authorization: ApiKey' is everything after the first space, so 'ApiKey  <T>' "
        "(two spaces, which RFC 9110's 1*SP allows) presents ' <T>' and is refused"
    ),
    "head-list-skips-revocation": (
        "HEAD on the list has a route of its own that authenticates through a cache filled on create, which a "
        "delete does not empty: a deleted manager token gets 200"
    ),
    "server-info-head-public": (
        "HEAD /api/server/info is exempt from authentication (a health-check rule), so it answers 200 to "
        "a request without any credential"
    ),
    "token-answers-text-plain": (
        "the token calls label their JSON answers 'Content-Type: text/plain; charset=utf-8' instead of "
        "application/json (a client generated from the OpenAPI spec cannot decode them)"
    ),
    "bad-json-400-echoes-headers": (
        "the 400 for a create body that is not valid JSON is a debug message listing the request's headers, "
        "the caller's credential among them"
    ),
    # -- issue 23 (h23indep): a mistake of an independent server the catalogue had no kin for ------
    "create-idempotent-by-name": (
        "creating a live token's name again answers 200 with that token's secret (kept in memory) and "
        "creates nothing: an idempotent create that shows a secret a second time"
    ),
}


# -- issue 17 (the real sts CLI): faults of the reference CLI, not the server ----------------
#: Faults the reference CLI (``sts_reference.cli``) can be started with (``--fault NAME`` before
#: the command group). The kill matrix runs the suites with the faithful server and a CLI
#: command carrying the fault.
CLI_FAULTS: dict[str, str] = {
    "cli-zero-date-no-expiry": (
        "the CLI reads --expiration 0001-01-01 as 'no expiration' (Go's zero time) and sends no expiryDate: "
        "the token it creates never expires (the real sts CLI's defect)"
    ),
}


class FaultSet(NameSet):
    """An immutable set of fault names, checked against ``FAULTS`` when built."""

    CATALOGUE = FAULTS
    KIND = "fault"

    __slots__ = ()


class CliFaultSet(NameSet):
    """An immutable set of CLI fault names, checked against ``CLI_FAULTS`` when built."""

    CATALOGUE = CLI_FAULTS
    KIND = "CLI fault"

    __slots__ = ()
