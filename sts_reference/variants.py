"""Named, correct alternatives to the reference server's choices.

The public material leaves some behaviour open (see the README's table of what the reference
does): which status refuses a missing token, whether duplicate names are allowed, what
deleting an unknown id answers, and so on. A conformance suite must pass every correct
implementation, not only the reference, so each entry here switches the reference to
another choice that stays within the documented behaviour. The suite's own tests start
servers with variants to prove that the suite accepts them.

Unlike a fault, a variant is not a defect: a server with any set of variants is conformant.
Variants and faults combine on one server. To add a variant: add an entry to ``VARIANTS``
(name: one line saying what the server does instead) and consult it where the reference's
choice is made.
"""

from __future__ import annotations

from .switches import NameSet

VARIANTS: dict[str, str] = {
    # -- refusals ---------------------------------------------------------------------------
    "unauthenticated-403": "a missing, unknown, expired or deleted token gets 403 instead of 401",
    "forbidden-401": "a valid token without the manager role gets 401 instead of 403 on the token calls",
    "plain-text-errors": (
        "401, 403 and 404 answers have a text/plain body; the documented 400 ServiceTokenInvalidExpiryError stays JSON"
    ),
    "scheme-case-sensitive": "only the exact scheme word 'ApiKey' is accepted in the Authorization header",
    # -- the list and deleting --------------------------------------------------------------
    "expired-hidden": "the list leaves out expired tokens (they still exist: deleting one by id answers 204)",
    "expired-purged": "expired tokens are removed from storage: the list no longer shows them and deleting one is 404",
    "delete-unknown-204": "deleting an id that does not exist answers 204",
    "bootstrap-unlisted": "the bootstrap token is not listed and cannot be deleted (404)",
    "list-newest-first": "the list is ordered newest first",
    # -- creating ---------------------------------------------------------------------------
    "duplicate-names-refused": "creating a token with the name of a live token is refused with 409, creating nothing",
    "empty-roles-refused": "an empty role list is refused with 400",
    "unknown-roles-refused": "roles other than the predefined ones (and the manager roles) are refused with 400",
    "names-max-64": "names longer than 64 characters are refused with 400",
    "sequential-ids": "ids are 1, 2, 3, ... in creation order, never reused",
    "ids-reused-after-delete": (
        "ids are the smallest positive number no stored token has (a database row id), so a deleted "
        "token's id goes to the next token created"
    ),
    "hex-secrets": "secrets are 64 lower-case hex digits with no prefix",
    "ids-beyond-2-53": (
        "ids are random integers between 2^53 and 2^63 (JSON numbers a double cannot hold exactly; int64 as the "
        "spec types them)"
    ),
    # -- what real infrastructure does (issue 18; infra.py) -----------------------------------
    "gzip": "answers are gzip-compressed when the client accepts it (Content-Encoding: gzip), as an ingress does",
    "rate-limit": (
        "one request in 25 gets 429 and nothing is done for it; Retry-After is 0, the current second as an "
        "HTTP-date, or absent, in turn"
    ),
    "null-optional-fields": "optional fields without a value are written as null (expiration, description, ...)",
    "malformed-credential-400": "a credential header that cannot be parsed (empty, spaces, ';') gets 400",
    "unused-methods-501": (
        "methods the API never uses (OPTIONS, PUT, PATCH, ...) get 501 Not Implemented on every path, as Python's "
        "http.server answers (RFC 9110 allows 501 for a method a server supports on no resource)"
    ),
    "session-cookies": (
        "an accepted call with a credential sets a session cookie; a later request with only that cookie is "
        "authenticated as that credential"
    ),
    # -- issue 18: a real deployment lags and has no Date header (lag.py) ---------------------------
    "list-lag": "the list is read from a replica half a second behind: a create or a delete shows there ~0.5 s late",
    "revocation-lag": "an authentication cache lets a deleted token work for up to a second after its delete",
    "no-date-header": "responses carry no Date header (the status body's serverTimestamp is the only server clock)",
    "late-bootstrap-token": "the bootstrap token is written about a second after the API starts answering",
    # -- issue 23 item 5: when the bootstrap token is stored (lag.py) -----------------------------
    "bootstrap-stored-when-presented": (
        "the bootstrap token is stored only when first presented, dated as of the start: it expires at the start "
        "plus its ttl all the same"
    ),
    # -- issue 24: a proxy's clock in the Date header -----------------------------------------------
    "proxy-date-ahead": (
        "the Date header is written by a proxy whose clock runs 20 s ahead of the API's; serverTimestamp "
        "and every expiry follow the API's own clock"
    ),
}


class VariantSet(NameSet):
    """An immutable set of variant names, checked against ``VARIANTS`` when built."""

    CATALOGUE = VARIANTS
    KIND = "variant"

    __slots__ = ()
