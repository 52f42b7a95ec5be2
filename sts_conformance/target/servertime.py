"""The target's clock, as well as it can be read: expiry is judged on it, never on ours alone.

The ``Date`` header is the usual reading (1 s resolution). A deployment may send none (some
ingresses strip it), or one that disagrees with the service's own timestamps (a proxy that
stamps its own clock). So the run looks once, at its start (:func:`assess`):

- ``date``: the ``Date`` header is read, and it agrees with the ``serverTimestamp`` of the
  status answer (when there is one) to within a second;
- ``body``: no ``Date`` header, but the status answer to an authenticated call carries the
  service's ``serverTimestamp``: that is read instead (one authenticated call per reading);
- ``local``: neither: the suite's own clock is used, and every expiry wait is widened by
  :data:`LOCAL_MARGIN_MS`.

A ``Date`` that disagrees with the service's ``serverTimestamp`` by more than a second (a proxy
stamping its own clock) is not the clock that decides expiry: the service's is. Then the run
reads ``body`` as well, and a ``Date`` read where no body timestamp comes with the answer is
corrected by the disagreement measured at the start (with a second's margin on every wait).
Each of these is stated in the report (a note), never a failed requirement: no document makes
the ``Date`` header a requirement of the service-token feature.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from sts_conformance.target.client import ApiClient, AuthForm, server_time_ms

DATE = "date"
BODY = "body"
LOCAL = "local"
#: how much wider every expiry wait is when only the suite's own clock can be read
LOCAL_MARGIN_MS = 2_000
#: a Date header truncates to the second: a difference this large still agrees
_AGREES_MS = 1_000


@dataclass
class ClockFacts:
    """How the target's clock is read in this run (plain data: handed to every worker)."""

    source: str = DATE
    #: added to every wait for the server's clock to pass an instant (ms)
    margin_ms: int = 0
    #: what the report says about it ("" when the Date header is all it should be)
    note: str = ""
    #: the service's clock less the Date header's, when they disagree (``body`` only): a Date read is
    #: corrected by it where an answer carries no serverTimestamp
    date_offset_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def body_time_ms(response: httpx.Response) -> int | None:
    """The ``serverTimestamp`` a JSON answer carries (the status call's, an error body's), in epoch ms."""
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("serverTimestamp") if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def reading_ms(response: httpx.Response, facts: ClockFacts | None = None) -> int | None:
    """The server's clock as one answer shows it: its Date header, else its body's serverTimestamp.

    Read as ``facts`` say: where the clock that decides is the service's own (``body``), the
    body's serverTimestamp first, else the Date header corrected by the offset measured at the start.
    """
    if facts is not None and facts.source == BODY:
        stamped = body_time_ms(response)
        if stamped is not None:
            return stamped
        date = server_time_ms(response)
        return None if date is None else date + facts.date_offset_ms
    return server_time_ms(response) or body_time_ms(response)


def assess(
    client: ApiClient, probe_path: str, anonymous: httpx.Response, admin_token: str, admin_form: AuthForm
) -> ClockFacts:
    """How this target's clock can be read: one authenticated status call besides the anonymous one."""
    date = server_time_ms(anonymous)
    try:
        status = client.probe(probe_path, admin_token, admin_form)
    except httpx.HTTPError:
        status = None
    body = body_time_ms(status) if status is not None and status.is_success else None
    if date is None and status is not None:
        date = server_time_ms(status)
    if date is None and body is None:
        return ClockFacts(
            LOCAL,
            LOCAL_MARGIN_MS,
            f"clock: the target sends no Date header and no serverTimestamp, so expiry is judged on the suite's own "
            f"clock, with every wait {LOCAL_MARGIN_MS} ms longer",
        )
    if date is None:
        why = "clock: the target sends no Date header; expiry is judged on the serverTimestamp of its status call"
        return ClockFacts(BODY, 0, why)
    if body is not None and status is not None:
        # the Date truncates to the second and came at most one round trip apart from the body's stamp
        stamped = server_time_ms(status) or date
        slack = _AGREES_MS + _round_trip_ms(status)
        off = body - stamped
        if not -slack <= off <= slack:
            # the Date comes from another clock than the one that decides expiry (a proxy's): judge on
            # the service's own, a Date read alone corrected by what was measured here
            return ClockFacts(
                BODY,
                _AGREES_MS,
                f"clock: the Date header runs {abs(off)} ms {'ahead of' if off < 0 else 'behind'} the service's "
                "serverTimestamp, so expiry is judged on the serverTimestamp (the API's own clock), a Date header "
                f"read alone corrected by that, with every expiry wait {_AGREES_MS} ms longer",
                date_offset_ms=off,
            )
    return ClockFacts()


def _round_trip_ms(response: httpx.Response) -> int:
    try:
        return int(response.elapsed.total_seconds() * 1000) + 1
    except RuntimeError:
        return 0


def now_ms(client: ApiClient, probe_path: str, facts: ClockFacts, admin_token: str, admin_form: AuthForm) -> int | None:
    """The server's clock now, read the way ``facts`` says (None: this reading failed)."""
    if facts.source == LOCAL:
        return int(time.time() * 1000)
    if facts.source == DATE:
        now = server_time_ms(client.probe(probe_path))
        if now is not None:
            return now
    return reading_ms(client.probe(probe_path, admin_token, admin_form), facts)
