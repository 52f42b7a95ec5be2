"""Secrets in disguise: the forms in which a response can carry a secret without spelling it out.

A response carries a secret when it holds the secret itself, or

- the secret **base64-encoded** (standard or URL-safe alphabet, padded or not, also inside a
  longer encoded value such as ``base64("user:" + secret)``): the encoding of the secret's
  bytes at each of the three byte offsets modulo 3, without the characters its neighbours
  change;
- the secret **percent-encoded** (``%73vctok-…``, ``%2F`` for ``/``): texts are also read
  percent-decoded;
- a **fragment** of the secret's random part, from its start or its end, long enough to
  narrow a guess: :data:`FRAGMENT_BITS` bits, so 8 characters of a base64 alphabet (6 bits
  each), 12 of hex digits (4 bits each). The random part is what follows a short letters-only
  prefix (``svctok-``); a secret without one (a bootstrap token, 64 hex digits) is all random
  part. Fragments are looked for only in secrets the target issued (:attr:`Redactor.issued
  <sts_conformance.core.redact.Redactor.issued>`): a secret an operator chose, such as a bootstrap
  token like ``stackstate-bootstrap-2024``, may share 8 characters with a role or a name by
  design, while 48 random bits turn up by chance in a run's responses with a probability
  below 10^-7 (2^-48 per position, about 10^5 positions and a few hundred secrets).
"""

from __future__ import annotations

import base64
import functools
import math
import re
import string
import urllib.parse
from collections.abc import Iterable

#: how much of a secret's randomness a fragment must carry to count as carrying the secret
FRAGMENT_BITS = 48
#: a prefix of letters ending in '-' or '_' (``svctok-``) is not part of the random part
_PREFIX = re.compile(r"^[A-Za-z]{2,12}[-_]")
_HEX = frozenset(string.hexdigits)
_BASE64_ALPHABETS = (base64.b64encode, base64.urlsafe_b64encode)

#: labels for the kinds of disguise, as messages show them
CLEAR, ENCODED, FRAGMENT = "in clear", "base64-encoded", "a fragment of its random part"


def random_part(secret: str) -> str:
    """The part of ``secret`` after a letters-only prefix such as ``svctok-`` (all of it when it has none)."""
    match = _PREFIX.match(secret)
    return secret[match.end() :] if match and len(secret) - match.end() >= 16 else secret


def fragment_length(secret: str) -> int:
    """How many characters of the random part carry :data:`FRAGMENT_BITS` bits."""
    part = random_part(secret)
    bits_per_char = 4 if set(part) <= _HEX else 6
    return math.ceil(FRAGMENT_BITS / bits_per_char)


@functools.lru_cache(maxsize=8192)
def fragments(secret: str) -> tuple[str, ...]:
    """The start and the end of the secret's random part, each just long enough to count.

    None for a secret whose random part is under twice that length: its fragments would be most of it.
    """
    part = random_part(secret)
    n = fragment_length(secret)
    if len(part) < 2 * n:
        return ()
    return (part[:n], part[-n:])


@functools.lru_cache(maxsize=8192)
def encoded_forms(secret: str) -> tuple[str, ...]:
    """The secret's base64 encodings (both alphabets) as they show inside any encoded value.

    At each byte offset (0, 1, 2 modulo 3) the characters that depend on the secret's bytes
    alone are kept: padding and the characters shared with neighbouring bytes are dropped.
    """
    raw = secret.encode("utf-8", "surrogatepass")
    forms: list[str] = []
    for encode in _BASE64_ALPHABETS:
        for shift in range(3):
            text = encode(b"\0" * shift + raw).decode("ascii").rstrip("=")
            start = math.ceil(shift * 4 / 3)  # characters that carry a pad byte's bits
            end = ((shift + len(raw)) * 8) // 6  # characters made of the secret's bits only
            core = text[start:end]
            if len(core) >= 8:
                forms.append(core)
    return tuple(dict.fromkeys(forms))


def _haystack(texts: Iterable[str]) -> str:
    """All texts, and their percent-decoded forms, in one string (NUL-separated, so no match spans two)."""
    out = []
    for t in texts:
        out.append(t)
        if "%" in t:
            out.append(urllib.parse.unquote(t))
            out.append(urllib.parse.unquote_plus(t))
    return "\0".join(out)


def _kind(haystack: str, secret: str, issued: bool) -> str | None:
    if secret in haystack:
        return CLEAR
    if any(form in haystack for form in encoded_forms(secret)):
        return ENCODED
    if issued and any(f in haystack for f in fragments(secret)):
        return FRAGMENT
    return None


def how_carried(texts: Iterable[str], secret: str, *, issued: bool = False) -> str | None:
    """In which form ``texts`` carry ``secret`` (:data:`CLEAR`, :data:`ENCODED`, :data:`FRAGMENT`), or None.

    ``issued``: the target generated the secret, so a fragment of its random part counts too.
    """
    return _kind(_haystack(texts), secret, issued)


def carried(texts: Iterable[str], secrets: Iterable[str], issued: Iterable[str] = ()) -> dict[str, str]:
    """Which of ``secrets`` the texts carry, each with how (see :func:`how_carried`); ``issued``
    names those the target generated."""
    haystack = _haystack(texts)
    from_target = frozenset(issued)
    found = {}
    for secret in secrets:
        how = _kind(haystack, secret, secret in from_target)
        if how is not None:
            found[secret] = how
    return found
