"""Redaction: registered secrets and anything shaped like a product token are masked."""

from __future__ import annotations

import logging

from sts_conformance.core.redact import REDACTOR, Redactor, fingerprint, install_logging_filter


def test_registered_secret_is_replaced_by_its_fingerprint():
    """A registered secret never survives masking; its fingerprint says which one it was."""
    r = Redactor()
    r.register("0123456789abcdef0123456789abcdef")
    out = r.mask("token=0123456789abcdef0123456789abcdef!")
    assert "0123456789abcdef0123456789abcdef" not in out
    assert fingerprint("0123456789abcdef0123456789abcdef") in out


def test_unregistered_product_shaped_token_is_masked():
    """A svctok-… value is masked even when the harness never saw it (a leak by the target)."""
    out = Redactor().mask('{"token": "svctok-AbCdEf0123456789_-xyz"}')
    assert "svctok-AbCdEf" not in out and "<secret:" in out


def test_longer_secret_containing_a_shorter_one_is_masked_whole():
    """Masking picks the longest match first, so no tail of a secret is left behind."""
    r = Redactor()
    r.register("abcdef123456", "abcdef123456XYZWVU")
    out = r.mask("abcdef123456XYZWVU")
    assert "XYZWVU" not in out


def test_short_values_are_not_registered():
    """Values too short to be secrets (e.g. '' or 'ab') are not masked everywhere."""
    r = Redactor()
    r.register("", "ab", None)
    assert r.mask("ab cd") == "ab cd"


def test_log_records_are_masked_at_creation(caplog):
    """A secret passed to any logger comes out masked, whatever the handler."""
    install_logging_filter()
    REDACTOR.register("logged-secret-0000111122223333")
    with caplog.at_level(logging.INFO):
        logging.getLogger("x.y").info("using %s now", "logged-secret-0000111122223333")
    assert "logged-secret-0000111122223333" not in caplog.text
    assert "<secret:" in caplog.text
