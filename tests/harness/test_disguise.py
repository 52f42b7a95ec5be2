"""Secrets in disguise: base64, percent-encoding and fragments count as carrying a secret, and are masked.

A correct server never trips the detection: random text of the same alphabets, operator-chosen
tokens next to role names, and every correct variant's secrets (the kill matrix runs those).
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse

import pytest

from sts_conformance.core.disguise import (
    CLEAR,
    ENCODED,
    FRAGMENT,
    carried,
    encoded_forms,
    fragment_length,
    fragments,
    how_carried,
    random_part,
)
from sts_conformance.core.redact import Redactor, fingerprint

SVCTOK = "svctok-" + "Qx7_kP2-aZ9mWc4nLr8tYb1vHs6dJf3e"  # 32 URL-safe base64 characters, like the reference's
HEX = "3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdd"


def _b64(data: bytes, *, urlsafe: bool, padded: bool) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if padded else text.rstrip("=")


@pytest.mark.parametrize("urlsafe", [False, True], ids=["standard", "url-safe"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("before", [b"", b"u", b"us", b"user:", b'{"principal":"'], ids=lambda b: f"after-{len(b)}")
def test_base64_of_the_secret_is_found_at_any_offset(urlsafe, padded, before):
    """The secret base64-encoded, alone or inside a longer encoded value, counts as carried."""
    encoded = _b64(before + SVCTOK.encode() + b'"}', urlsafe=urlsafe, padded=padded)
    assert how_carried([f'{{"credential": "{encoded}"}}'], SVCTOK) == ENCODED


def test_percent_encoded_secret_is_found():
    """Percent-encoded, in any case of hex digit, and form-encoded."""
    secret = "svctok-ab/cd+ef=gh" + "x" * 20
    for text in (urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret, safe="").lower(), "%73vctok-ab"):
        assert how_carried([text], secret if not text.startswith("%73") else "svctok-ab") == CLEAR


@pytest.mark.parametrize("secret", [SVCTOK, HEX], ids=["svctok", "hex"])
def test_fragments_of_an_issued_secret_count_only_from_their_length(secret):
    """The start or end of the random part counts once it carries 48 bits: 8 base64 or 12 hex characters."""
    part, n = random_part(secret), fragment_length(secret)
    assert n == (12 if secret == HEX else 8)
    assert part == (secret.removeprefix("svctok-"))
    for fragment in (part[:n], part[-n:], "svctok-" + part[:n] + "…"):
        assert how_carried([f"the caller is {fragment}"], secret, issued=True) == FRAGMENT
        assert how_carried([f"the caller is {fragment}"], secret) is None  # not issued: whole secret only
    assert how_carried([f"token {part[: n - 1]}…"], secret, issued=True) is None
    assert how_carried([f"token …{part[-(n - 1) :]}"], secret, issued=True) is None


def test_operator_chosen_token_is_not_matched_in_parts():
    """A bootstrap token an operator chose shares words with role names and names by design: only the whole counts."""
    token = "stackstate-admin-bootstrap-token"
    listing = json.dumps([{"id": 1, "name": "bootstrap", "roles": ["stackstate-admin"]}])
    assert how_carried([listing], token) is None
    assert fragments("stackstate-admin") == () or how_carried([listing], "stackstate-admin") == CLEAR


def test_a_correct_servers_answers_never_carry_a_secret_by_chance():
    """Hundreds of issued secrets of both shapes against megabytes of random text of the same alphabets."""
    issued = ["svctok-" + secrets.token_urlsafe(24) for _ in range(300)] + [secrets.token_hex(32) for _ in range(300)]
    texts = [
        json.dumps(
            {"trackingKey": secrets.token_hex(16), "id": secrets.randbelow(2**53), "x": secrets.token_urlsafe(48)}
        )
        for _ in range(5000)
    ]
    assert carried(texts, issued, issued) == {}


def test_carried_names_each_secret_and_how():
    other = "svctok-" + secrets.token_urlsafe(24)
    texts = [SVCTOK, base64.b64encode(other.encode()).decode()]
    assert carried(texts, [SVCTOK, other, HEX], [SVCTOK, other, HEX]) == {SVCTOK: CLEAR, other: ENCODED}


def test_encoded_forms_are_long_enough_to_mean_something():
    assert all(len(form) >= 8 for form in encoded_forms("abcdef"))
    # three offsets, in two alphabets (the same text where the encoding holds no '+' or '/')
    assert 3 <= len(set(encoded_forms(SVCTOK))) <= 6


def test_redaction_masks_disguised_forms_with_the_secrets_fingerprint():
    """Base64 always; fragments of the random part only for a secret the target issued."""
    r = Redactor()
    r.register(SVCTOK, issued=True)
    r.register(HEX)
    part = random_part(SVCTOK)
    text = " ".join(
        [base64.b64encode(SVCTOK.encode()).decode(), part[:8], part[-8:], base64.b64encode(HEX.encode()).decode()]
    )
    out = r.mask(text)
    assert part[:8] not in out and part[-8:] not in out and "c3ZjdG9r" not in out
    assert out.count(fingerprint(SVCTOK)) == 3 and out.count(fingerprint(HEX)) == 1
    assert r.issued() == frozenset({SVCTOK})
    assert r.mask(HEX[:12]) == HEX[:12]  # not issued: its fragments are not masked
