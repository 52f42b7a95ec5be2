"""Bootstrap checks on an external deployment: reconfigure it, one configuration at a time, then restore it.

A real deployment gets its bootstrap token from Helm values (``authentication.yaml``), applied
with ``helm upgrade`` and a rollout. With ``bootstrap.reconfigure`` in the profile, the
controller does that itself before any check runs: for each configuration the bootstrap
checks need (``fleet.plan``) it writes an ``authentication.yaml`` with a fresh secret, runs the
command (which applies it and returns once the deployment serves it), waits until the target
answers and the profile's admin credential works again, and takes the new bootstrap token
through the recorded scenario (``fleet.run_scenario``) — including waiting out its ttl on
the server's clock. Then ``bootstrap.restore`` puts the deployment back, and the other checks
run against it as usual. The checks judge what was recorded.

The admin credential has to survive every reconfiguration, so it must be a *service token*
(it lives in the deployment's storage and outlives a redeploy), not the bootstrap token.

A rollout stops the API for a while: nothing else of the run goes on meanwhile. What a
reconfiguration costs (a rollout, then the ttl) is the profile's choice:
``bootstrap.ttl_spellings`` long enough for the rollout, ``bootstrap.reconfigure_timeout``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from sts_conformance.checking.fleet import (
    LONG,
    Instance,
    ScenarioTools,
    matrix_label,
    max_ttl_ms,
    plan,
    run_scenario,
    waitable_ttl,
)
from sts_conformance.core.errors import ProfileError, TargetUnavailable
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import ApiClient, TlsSettings
from sts_conformance.target.connect import Connection, new_bootstrap_secret, wait_until_answers, write_auth_config
from sts_conformance.target.profile import TargetProfile
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import TokenLedger

_OUTPUT_TAIL = 20


class Reconfigurer:
    """Runs the bootstrap configurations against an external deployment, then restores it (once)."""

    def __init__(
        self,
        profile: TargetProfile,
        connection: Connection,
        run_dir: Path,
        ledger: TokenLedger,
        say: Callable[[str], None],
    ):
        self.profile = profile
        self.connection = connection
        self.run_dir = run_dir
        self.ledger = ledger
        self.say = say
        self.workdir = run_dir / "reconfigure"
        self.workdir.mkdir(mode=0o700, exist_ok=True)
        self._applied = False
        self._restored = False

    # -- the whole sequence ------------------------------------------------------------------

    def run(self) -> None:
        """Every configuration in turn, then the restore; raises TargetUnavailable when one cannot be applied."""
        instances = plan(self.profile)
        row = matrix_label(self.profile)
        try:
            with ApiClient.for_profile(self.profile, self.connection.url) as client:
                for n, inst in enumerate(instances, 1):
                    # what is listed before: the bootstrap token of the configuration is not among it
                    known = self._listed_ids(client) if inst.label == LONG else frozenset()
                    self._apply(inst, n, len(instances))
                    tools = ScenarioTools(
                        self.profile,
                        client,
                        observer=lambda: (self.connection.admin_token, self.connection.admin_form),
                        victim=self._victim,
                        journal=self.ledger.journal,
                        name_prefix=f"{self.ledger.prefix}-boot",
                        manage_form=self.connection.admin_form,
                        known_ids=known,
                    )
                    if inst.ttl is not None and waitable_ttl(inst.ttl, max_ttl_ms(self.profile)):
                        self.say(
                            f"bootstrap {n}/{len(instances)}: waiting out the ttl {inst.ttl!r} on the server's clock"
                        )
                    run_scenario(inst, tools, self.run_dir, row=inst.label == row)
                    if inst.error is not None:
                        self.say(f"bootstrap {n}/{len(instances)}: {inst.error}")
        finally:
            self.restore()

    def _listed_ids(self, client: ApiClient) -> frozenset[int]:
        """The ids the admin credential sees listed now (none when the list cannot be read)."""
        try:
            items = client.list_tokens(self.connection.admin_token, form=self.connection.admin_form).json()
        except (httpx.HTTPError, ValueError):
            return frozenset()
        return (
            frozenset(tid for i in items if isinstance(i, dict) and (tid := token_id(i.get("id"))) is not None)
            if isinstance(items, list)
            else frozenset()
        )

    def _victim(self) -> int | None:
        """A token of the run the expired bootstrap token's delete is aimed at (journalled: cleaned up)."""
        _resp, tok = self.ledger.create_raw(
            {"name": self.ledger.name("boot-victim"), "roles": [self.profile.unprivileged_role]}
        )
        return tok.id if tok is not None else None

    # -- one configuration -------------------------------------------------------------------

    def _apply(self, inst: Instance, n: int, total: int) -> None:
        settings = self.profile.bootstrap
        inst.token = new_bootstrap_secret()
        REDACTOR.register(inst.token)
        inst.url = self.connection.url
        auth = write_auth_config(
            self.workdir / f"authentication-{n}.yaml",
            token=inst.token,
            roles=inst.roles,
            ttl=inst.ttl,
            key=inst.key or settings.key,
        )
        what = f"roles {inst.roles}" + (f", ttl {inst.ttl!r}" if inst.ttl else "") + f", key {inst.key or settings.key}"
        self.say(f"bootstrap {n}/{total}: applying an authentication.yaml ({what}) with bootstrap.reconfigure")
        inst.launched_at = time.time()
        assert settings.reconfigure is not None
        self._applied = True
        self._command("reconfigure", settings.reconfigure, auth)
        self._until_served("bootstrap.reconfigure")

    def restore(self) -> None:
        """Put the deployment back (once), and wait until it serves with the admin credential again."""
        if self._restored or not self._applied:
            return
        self._restored = True
        restore = self.profile.bootstrap.restore
        if restore is None:
            self.say(
                "bootstrap: no bootstrap.restore in the profile: the deployment keeps the last authentication.yaml "
                "the suite applied (its bootstrap token has expired)"
            )
            return
        self.say("bootstrap: putting the deployment back with bootstrap.restore")
        self._command("restore", restore, None)
        self._until_served("bootstrap.restore")

    def _command(self, key: str, command: str, auth: Path | None) -> None:
        try:
            line = command.format(
                auth_config=shlex.quote(str(auth)) if auth is not None else "",
                python=shlex.quote(sys.executable),
                workdir=shlex.quote(str(self.workdir)),
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ProfileError(
                f"target profile {self.profile.source}: bootstrap.{key} has an unknown placeholder {exc} "
                "(known: {auth_config}, {python}, {workdir})"
            ) from None
        timeout = self.profile.bootstrap.reconfigure_timeout
        try:
            done = subprocess.run(
                line,
                shell=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TargetUnavailable(
                f"bootstrap.{key} did not finish within {timeout:g}s (bootstrap.reconfigure_timeout)"
            ) from None
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-_OUTPUT_TAIL:])
            shown = f"; last output:\n{REDACTOR.mask(tail)}" if tail else ""
            raise TargetUnavailable(f"bootstrap.{key} exited with status {done.returncode}{shown}")

    def _until_served(self, key: str) -> None:
        """The deployment answers again, and takes the admin credential (a service token outlives a redeploy)."""
        p = self.profile
        timeout = p.bootstrap.reconfigure_timeout
        deadline = time.monotonic() + timeout
        wait_until_answers(self.connection.url + p.probe_path, timeout, tls=TlsSettings.from_profile(p), profile=p)
        admin, form = self.connection.admin_token, self.connection.admin_form
        with ApiClient.for_profile(p, self.connection.url) as client:
            while True:
                try:
                    if client.list_tokens(admin, form=form).is_success:
                        return
                except httpx.HTTPError:
                    pass  # still rolling out
                if time.monotonic() > deadline:
                    raise TargetUnavailable(
                        f"after {key} the deployment answers, but refuses the profile's admin_token: make it a "
                        "service token with the manager role (it survives a redeploy), not the bootstrap token"
                    )
                time.sleep(1.0)


def announce(text: str) -> None:
    """Progress of the reconfigurations, on stderr (they run before pytest reports anything)."""
    sys.stderr.write(f"sts-conformance: {text}\n")
    sys.stderr.flush()
