"""The probe: the call that answers "does this credential authenticate?", chosen at the start of a run.

Every refusal check (a deleted, expired, unknown or near-miss token is refused) and every
acceptance check stands on one call that a credential decides. Such a call has to refuse a
request that presents no credential, or a refusal there proves nothing and an acceptance
proves nothing either.

Two documented calls qualify. The profile's ``probe_path`` (by default
``/api/server/status``, the call the product page's examples make with a token) comes
first; ``{api_path}/server/info`` is the one the vendor spec defines with a 401 for a
request that is not authenticated. No public source says what ``server/status`` answers
without a credential, so a target whose status endpoint is public is not broken in every
refusal check: the run takes the first candidate that refuses an anonymous request, and a
public status is one finding of its own (ST-AUTH-012, a SHOULD). Only when no candidate
refuses is the foundation ST-AUTH-001 failed, and the checks standing on it blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from sts_conformance.target.client import ApiClient
from sts_conformance.target.profile import TargetProfile

#: the spec's call with a documented 401, below the API root
SERVER_INFO = "/server/info"


def candidates(profile: TargetProfile) -> list[str]:
    """The calls a run may stand its refusal checks on, in order of preference (paths below the target url)."""
    return list(dict.fromkeys([profile.probe_path, profile.api_path + SERVER_INFO]))


@dataclass
class ProbeChoice:
    """Which call the run's checks present credentials to, and what each candidate answered anonymously."""

    #: the first candidate that refused an anonymous GET (the profile's probe_path when none did)
    path: str
    #: candidate path -> status of an anonymous GET, in the order they were tried
    anonymous: dict[str, int] = field(default_factory=dict)
    #: the first answer (its Date header reads the server's clock)
    first: httpx.Response | None = field(default=None, repr=False, compare=False)

    @property
    def refuses_anonymous(self) -> bool:
        status = self.anonymous.get(self.path)
        return status is not None and not 200 <= status < 300


def choose(client: ApiClient, profile: TargetProfile) -> ProbeChoice:
    """Try the candidates anonymously (one GET each, until one refuses) and pick the first that refuses."""
    choice = ProbeChoice(profile.probe_path)
    for path in candidates(profile):
        resp = client.probe(path)
        if choice.first is None:
            choice.first = resp
        choice.anonymous[path] = resp.status_code
        if not resp.is_success:
            choice.path = path
            break
    return choice


def public(anonymous: dict[str, int], path: str) -> bool:
    """Whether ``path`` answered an anonymous GET with success at the start of the run."""
    status = anonymous.get(path)
    return status is not None and 200 <= status < 300
