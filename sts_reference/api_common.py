"""What the reference server's request handlers share: limits, names, error shapes, and the state.

:class:`ApiState` declares the state one :class:`~sts_reference.app.ServiceTokenApi` keeps
(set up in its ``__init__``) and the methods its parts call on each other, so that each part
(:mod:`.auth` authenticates and authorizes, :mod:`.token_calls` answers the token calls,
:mod:`.app` wires them into routes) can be read, and type-checked, on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from starlette.responses import Response
from starlette.types import Scope

from . import model_faults, rights_faults
from .clock import Clock
from .config import BootstrapSpec
from .faults import FaultSet
from .lag import Lag
from .store import TokenRecord, TokenStore
from .variants import VariantSet

logger = logging.getLogger("sts_reference")

MAX_NAME_LENGTH = 256
"""Longest accepted token name, in characters (Unicode code points)."""

MAX_DEDICATED_SUBJECT_LENGTH = 256
MAX_BODY_BYTES = 64 * 1024
"""Larger request bodies get 413 without being parsed."""

SECRET_PREFIX = "svctok-"
SECRET_RANDOM_BYTES = 24
"""192 random bits, rendered in the URL-safe base64 alphabet (no header quoting needed)."""

BOOTSTRAP_TOKEN_NAME = "bootstrap"

Call = Literal["status", "info", "list", "create", "delete"]
"""The API call a request makes; some faults check a token differently on different calls."""
MANAGEMENT_CALLS: frozenset[Call] = frozenset({"list", "create", "delete"})

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Used only by the deliberate faults (faults.py).
GENERATED_SECRET_LENGTH = len(SECRET_PREFIX) + len(secrets.token_urlsafe(SECRET_RANDOM_BYTES))
EXPIRY_GRACE_MS = 30_000
#: set in a request's scope when its credential came from a session cookie (infra.py), not the request
SESSION_SCOPE_KEY = "sts.session"
#: the shift of the one-hour expiry faults (a time-zone offset): expiry-one-hour-late, expiry-enforced-one-hour-late
HOUR_MS = 3_600_000
ID_RACE_WINDOW_S = 0.005
"""How long the id-race fault takes between reading the last id and storing the next (a database round trip)."""
NAME_COLUMN_LENGTH = 255
NAME_CUT_LENGTH = 64
POWER_USER_ROLE = "stackstate-power-user"
PREFIX_MATCH_MIN = 8
LIST_LIMIT = 20
#: the list-capped-at-100 fault's cap, and the page of list-paged-at-1000 and list-sorted-truncated
LIST_CAP = 100
LIST_PAGE = 1_000
DEBUG_PRINCIPAL_HEADER = "X-Debug-Principal"
ROLE_SLOTS = 8
SECRET_HINT_LENGTH = 16

# Used only by the variants (variants.py).
PREDEFINED_ROLES = frozenset(
    {
        "stackstate-admin",
        "stackstate-power-user",
        "stackstate-k8s-troubleshooter",
        "stackstate-guest",
        "stackstate-k8s-admin",
    }
)
"""The roles the product defines (SaaS adds stackstate-k8s-admin); the unknown-roles-refused
variant accepts these and the manager roles."""
SHORT_NAME_LENGTH = 64
HEX_SECRET_BYTES = 32

# Shaped like a product release so that clients checking the server version accept it;
# the commit field says which server this really is.
SERVER_INFO: dict[str, Any] = {
    "version": {
        "major": 6,
        "minor": 0,
        "patch": 0,
        "diff": "",
        "commit": "sts-reference",
        "isDev": False,
    },
    "deploymentMode": "SelfHosted",
    "applicationDomains": ["Observability"],
    "platformVersion": "6.0.0",
}

_TOKEN_ID = re.compile(r"-?[0-9]{1,20}", re.ASCII)
_OWS = b" \t"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def _scheme_and_credentials(value: bytes) -> tuple[bytes, bytes]:
    """An Authorization header value split into its scheme word and what follows it."""
    scheme, _, credentials = value.strip(_OWS).replace(b"\t", b" ").partition(b" ")
    return scheme, credentials.strip(_OWS)


def _credential_text(scope: Scope) -> str | None:
    """The credential a request carries, as text, without judging it (for the faults that echo it)."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.strip(_OWS).decode("latin-1")
        if name == b"authorization":
            return _scheme_and_credentials(value)[1].decode("latin-1")
    return None


def _presented_in_authorization(scope: Scope) -> bool:
    return any(
        name == b"authorization" and _scheme_and_credentials(value)[0].lower() == b"apikey"
        for name, value in scope["headers"]
    )


class _Refusal(Exception):
    """Ends a request with an error response."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


def _invalid_expiry(message: str) -> _Refusal:
    return _Refusal(400, message, error_type="ServiceTokenInvalidExpiryError")


def _utf8_safe(value: str) -> bool:
    # JSON can carry lone surrogates ("\ud800"); they cannot be stored or echoed as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lenient_epoch_ms(value: object) -> object:
    """The expiry-lenient-parsing fault: dates and date-times as epoch ms (00:00 UTC when no
    time is given), numbers with a fraction cut to an integer; anything else unchanged."""
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return value
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    return value


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class ApiState:
    """The state of a ServiceTokenApi, and the methods its parts share (declared for type checking)."""

    store: TokenStore
    clock: Clock
    manager_roles: frozenset[str]
    faults: FaultSet
    variants: VariantSet
    #: read on every request: one attribute check keeps the faithful path free of fault and variant lookups
    _faulty: bool
    _varied: bool
    bootstrap: BootstrapSpec | None
    _by_digest: dict[bytes, TokenRecord]
    _digest_by_id: dict[int, bytes]
    _keeps_stale_cache: bool
    _stale_by_digest: dict[bytes, TokenRecord]
    _keeps_secrets: bool
    _secrets: dict[int, str]
    _secret_key: bytes
    _sliding: rights_faults.SlidingExpiry | None
    _makers: model_faults.Makers | None
    _deferred_makers: model_faults.DeferredMakers | None
    _first_duplicate: model_faults.FirstDuplicateOnly | None
    _used_cache: dict[bytes, TokenRecord] | None
    _bootstrap_record: TokenRecord | None
    _last_id: int | None
    _lag: Lag
    _deleted_ids: set[int]
    _session_records: dict[bytes, TokenRecord] | None

    if TYPE_CHECKING:
        # the methods one part calls on another (defined in auth.py, token_calls.py and app.py)
        def _presented_secret(self, scope: Scope, call: Call) -> bytes: ...
        def authenticate(self, scope: Scope, call: Call) -> TokenRecord: ...
        def _has_credential(self, scope: Scope) -> bool: ...
        def _remember(self, digest: bytes, record: TokenRecord) -> None: ...
        def _forget(self, removed: Iterable[int]) -> None: ...
        def authorize_manager(self, scope: Scope, call: Call) -> TokenRecord: ...
        def create_bootstrap_token(self, at_ms: int | None = None) -> None: ...
        def error(self, refusal: _Refusal, scope: Scope | None = None) -> Response: ...
