"""The whole suite, API and CLI, against the reference behind a real TLS ingress with a private CA.

What a staging deployment looks like: the reference deployment runs as an external target
(``python -m sts_reference serve``), and nginx terminates TLS in front of it (HTTP/2
enabled on the listener) with a certificate from a throw-away private CA. The run trusts
that CA through the profile's ``ca_bundle``, or through ``SSL_CERT_FILE``; with neither it
stops before any check, naming ``ca_bundle``. Skipped, saying so, where nginx is not installed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .suite_run import run_suites
from .tls_support import (
    Nginx,
    Pki,
    external_reference,
    make_pki,
    negotiated_protocol,
    neutral_environment,
    nginx_binary,
)

PROFILE = """\
name: reference-behind-nginx
url: {url}
admin_token: {token}
{extra}cli:
  command: "{cli}"
"""
REFERENCE_CLI = "{python} -m sts_reference.cli"


@dataclass(frozen=True)
class Ingress:
    url: str
    token: str
    pki: Pki
    workdir: Path


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed: the TLS ingress runs need it (apt-get install nginx-light)")
    workdir = tmp_path_factory.mktemp("ingress")
    pki = make_pki(workdir / "pki")
    with external_reference(workdir / "reference") as reference:
        nginx = Nginx(binary, workdir / "nginx", pki, reference.port).start()
        try:
            yield Ingress(nginx.url, reference.token, pki, workdir)
        finally:
            nginx.stop()


def _run(
    ingress: Ingress, name: str, *args: str, extra: str = "", cli: str = REFERENCE_CLI, **environ: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the suites with a profile written next to the PKI (so ``ca_bundle: pki/ca.pem`` is relative)."""
    profile = ingress.workdir / f"{name}.yaml"
    profile.write_text(PROFILE.format(url=ingress.url, token=ingress.token, extra=extra, cli=cli), encoding="utf-8")
    reports = ingress.workdir / f"reports-{name}"
    done = run_suites("--target", str(profile), *args, report_dir=reports, env=neutral_environment(**environ))
    return done, reports


def _report(reports: Path) -> dict:
    return json.loads((reports / "conformance.json").read_text(encoding="utf-8"))


def _assert_passed_with_the_cli(done: subprocess.CompletedProcess[str], reports: Path) -> None:
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = _report(reports)
    cli = [r for r in report["requirements"] if r["id"].startswith("ST-CLI-")]
    assert cli and {r["status"] for r in cli} == {"passed"}, [(r["id"], r["status"]) for r in cli]
    assert not [t["nodeid"] for r in cli for t in r["tests"] if t["outcome"] != "passed"]
    assert report["target"]["server"]["reachable"] and report["target"]["server"]["status"] == 200


def test_the_ingress_offers_http2(ingress):
    """Precondition: the listener is what an ingress is, TLS with HTTP/2 on offer."""
    assert negotiated_protocol(ingress.url, ingress.pki.ca_pem) == "h2"


def test_whole_suite_passes_with_ca_bundle_in_the_profile(ingress):
    """ca_bundle is used by every API client and handed to the CLI as SSL_CERT_FILE."""
    done, reports = _run(ingress, "with-ca-bundle", extra="ca_bundle: pki/ca.pem\n")
    _assert_passed_with_the_cli(done, reports)
    assert _report(reports)["profile"]["ca_bundle"] == str(ingress.pki.ca_pem)


def test_whole_suite_passes_with_ssl_cert_file_in_the_environment(ingress):
    """Without ca_bundle, SSL_CERT_FILE from the environment reaches both the API clients and the CLI."""
    done, reports = _run(ingress, "with-ssl-cert-file", SSL_CERT_FILE=str(ingress.pki.ca_pem))
    _assert_passed_with_the_cli(done, reports)


def test_no_ca_at_all_is_a_clean_start_failure_naming_ca_bundle(ingress):
    """Exit 4 before any check, one message that says which setting to use, no traceback."""
    done, _ = _run(ingress, "without-ca")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "set ca_bundle" in errors[0] and "SSL_CERT_FILE" in errors[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "passed" not in done.stdout and "failed" not in done.stdout


def test_cli_reading_only_sts_ca_cert_path_passes_with_ca_bundle(ingress):
    """ca_bundle also reaches the CLI as STS_CA_CERT_PATH, which sts v3.1+ reads (it ignores SSL_CERT_FILE then)."""
    cli = f"env -u SSL_CERT_FILE {REFERENCE_CLI}"  # the reference CLI builds its own transport from STS_CA_CERT_PATH
    done, reports = _run(
        ingress, "cli-sts-ca-cert-path", "--ignore-glob=suites/test_*.py", extra="ca_bundle: pki/ca.pem\n", cli=cli
    )
    _assert_passed_with_the_cli(done, reports)


def test_cli_alone_without_the_ca_is_a_harness_error_not_a_failed_requirement(ingress):
    """The suite's own client trusts the CA, the CLI does not: exit 3 with the reason, no ST-CLI failure."""
    # a CLI that reads neither of the variables the suite hands it the CA in (here: both point elsewhere)
    cli = f"env SSL_CERT_FILE={ingress.pki.other_ca_pem} STS_CA_CERT_PATH={ingress.pki.other_ca_pem} {REFERENCE_CLI}"
    done, reports = _run(
        ingress, "cli-without-ca", "--ignore-glob=suites/test_*.py", extra="ca_bundle: pki/ca.pem\n", cli=cli
    )
    assert done.returncode == 3, done.stdout[-4000:] + done.stderr[-2000:]
    assert "the CLI does not trust the TLS certificate of" in done.stdout
    statuses = {r["id"]: r["status"] for r in _report(reports)["requirements"] if r["id"].startswith("ST-CLI-")}
    assert set(statuses.values()) == {"error"}, statuses
