"""``sts-conformance-cleanup``: delete the service tokens that killed runs left on a target.

A run deletes every token it creates before it ends, also after failures and Ctrl-C; a run
killed hard (SIGKILL, a lost CI runner) cannot. A token the run names itself is called
``stsct-<run id>-…`` (the run id is 6 lower-case hex digits), so what such a run left behind
can be found in the target's list. (Tokens whose name is what a check sends, fuzzed names
for one, do not carry the prefix, and this command leaves them alone.) It lists the tokens with
the profile's admin credential and selects those whose name starts with ``stsct-<ID>-``
(``--run-id ID``) or with ``stsct-`` and any run id (``--all-runs``, the default). A token
whose name does not start that way is never touched, whatever else it has in common with
one that does. By default nothing is deleted: the selection is printed, and ``--yes``
deletes it. Tokens of a run still in progress are selected too: do not clean up while a
run against the same target is going.

The profile is read as a run reads it: ``--target``, else ``$STS_TARGET``; never the
embedded reference (a managed target is thrown away after each run, so it has nothing to
clean up).

Exit status: 0 done (the selection was listed, every selected token was deleted, or there
was nothing to do); 1 some selected tokens could not be deleted; 2 bad arguments; 4 a bad
profile, a target that cannot be reached, or an admin credential that is refused or may
not list tokens (one message, before anything is deleted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from sts_conformance.core.errors import HarnessError
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import ApiClient
from sts_conformance.target.connect import Connection, connect
from sts_conformance.target.profile import TARGET_ENV, TargetProfile, load_profile
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.sweep import NAME_PREFIX, run_prefix

PROG = "sts-conformance-cleanup"

EXIT_DONE = 0
EXIT_NOT_ALL_DELETED = 1
EXIT_UNUSABLE = 4

_RUN_ID = re.compile(r"[0-9a-f]{6}")
_ANY_RUN = re.compile(re.escape(NAME_PREFIX) + r"([0-9a-f]{6})-")
#: list fields that would hold a secret if a faulty target put one there
_SECRET_FIELDS = ("token", "secret", "apiKey", "serviceToken")
_NAME_WIDTH = 100


class CleanupError(HarnessError):
    """The target cannot be cleaned up with this profile (exit 4)."""


@dataclass(frozen=True)
class Leftover:
    """A listed token whose name carries the suite's prefix, with a usable id."""

    id: int
    name: str
    run_id: str
    roles: Any
    expiration: Any


@dataclass(frozen=True)
class Skipped:
    """A listed token whose name carries the prefix but that cannot safely be deleted."""

    name: str
    run_id: str
    why: str


@dataclass(frozen=True)
class Failure:
    token: Leftover
    why: str


# -- arguments --------------------------------------------------------------------------


def run_id_arg(value: str) -> str:
    """``--run-id``: 6 hex digits, as a run prints them (``run id 1a2b3c``); case is ignored."""
    if not _RUN_ID.fullmatch(value.lower()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a run id (6 hex digits, e.g. 1a2b3c)")
    return value.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Delete service tokens that conformance runs left on a target (runs killed before they could clean up). "
            f"Only tokens named {NAME_PREFIX}<run id>-… are considered. Without --yes nothing is deleted: the tokens "
            "that would be are listed."
        ),
        epilog=(
            "Tokens of a run still in progress are selected too: do not clean up while a run against the same target "
            "is going. Exit status: 0 done, 1 some tokens could not be deleted, 2 bad arguments, 4 bad profile, target "
            "unreachable or admin credential refused."
        ),
    )
    parser.add_argument(
        "--target",
        metavar="PROFILE",
        help=f"target profile (YAML), as for a run; default ${TARGET_ENV}",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--run-id",
        type=run_id_arg,
        metavar="ID",
        help=f"only the tokens of this run: {NAME_PREFIX}ID-… (ID as a run prints it, 6 hex digits)",
    )
    which.add_argument(
        "--all-runs",
        action="store_true",
        help=f"the tokens of every run: {NAME_PREFIX}<6 hex digits>-… (the default)",
    )
    parser.add_argument("--yes", action="store_true", help="delete the selected tokens (default: only list them)")
    return parser


# -- selection --------------------------------------------------------------------------


def run_of(name: object, run_id: str | None) -> str | None:
    """The run id in ``name`` when it carries the selected prefix, else None."""
    if not isinstance(name, str):
        return None
    if run_id is not None:
        return run_id if name.startswith(run_prefix(run_id)) else None
    m = _ANY_RUN.match(name)
    return m.group(1) if m else None


def select(items: Sequence[object], run_id: str | None) -> tuple[list[Leftover], list[Skipped]]:
    """The entries to delete, sorted by run id, name and id; and those carrying the prefix that cannot be.

    An entry is skipped when it has no usable id, or when its id is also listed under a name
    that is not selected (a faulty listing: deleting that id could remove someone else's token).
    """
    entries = [i for i in items if isinstance(i, dict)]
    for item in entries:
        for key in _SECRET_FIELDS:
            if isinstance(item.get(key), str):
                REDACTOR.register(item[key])
    others = {
        tid for i in entries if run_of(i.get("name"), run_id) is None and (tid := token_id(i.get("id"))) is not None
    }
    chosen: dict[int, Leftover] = {}
    skipped = []
    for item in entries:
        name = item.get("name")
        run = run_of(name, run_id)
        if run is None:
            continue
        assert isinstance(name, str)
        tid = token_id(item.get("id"))
        if tid is None:
            listed = _shown(repr(item["id"]), 40) if "id" in item else "none"
            skipped.append(Skipped(name, run, f"no usable id (listed id: {listed})"))
        elif tid in others:
            skipped.append(Skipped(name, run, f"id {tid} is also listed under a name that is not selected"))
        elif tid not in chosen:
            chosen[tid] = Leftover(tid, name, run, item.get("roles"), item.get("expiration"))
    leftovers = sorted(chosen.values(), key=lambda t: (t.run_id, t.name, t.id))
    return leftovers, sorted(skipped, key=lambda s: (s.run_id, s.name))


# -- output -----------------------------------------------------------------------------


def _shown(text: str, limit: int = _NAME_WIDTH) -> str:
    """``text`` safe to print: secrets masked, control and format characters escaped, cut to ``limit``."""
    text = REDACTOR.mask(text)
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _roles(value: object) -> str:
    if isinstance(value, list):
        return _shown(", ".join(str(r) for r in value), 60) if value else "(none)"
    return _shown(repr(value), 60)


def _expiration(value: object) -> str:
    if value is None:
        return "never"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        except (OverflowError, OSError, ValueError):
            pass
    return _shown(repr(value), 40)


def _say(line: str = "") -> None:
    print(REDACTOR.mask(line), flush=True)


def _complain(message: str) -> None:
    print(f"{PROG}: {REDACTOR.mask(message)}", file=sys.stderr, flush=True)


def render_table(leftovers: Sequence[Leftover]) -> list[str]:
    rows = [("RUN", "ID", "NAME", "ROLES", "EXPIRES (UTC)")]
    rows += [(t.run_id, str(t.id), _shown(t.name), _roles(t.roles), _expiration(t.expiration)) for t in leftovers]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]


def _count(n: int, what: str = "token") -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _runs(leftovers: Sequence[Leftover]) -> str:
    by_run: dict[str, int] = {}
    for t in leftovers:
        by_run[t.run_id] = by_run.get(t.run_id, 0) + 1
    return ("run " if len(by_run) == 1 else "runs ") + ", ".join(f"{run} ({n})" for run, n in by_run.items())


# -- talking to the target --------------------------------------------------------------


def list_tokens(client: ApiClient, profile: TargetProfile, conn: Connection) -> list[object]:
    """The target's token list, with the admin credential; :class:`CleanupError` when it cannot be had."""
    try:
        resp = client.list_tokens(conn.admin_token, form=conn.admin_form)
    except httpx.HTTPError as exc:
        raise CleanupError(
            f"target {profile.name!r}: listing tokens at {client.api_url}/security/tokens failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if resp.status_code != 200:
        hint = (
            f"; admin_token needs a role that may manage service tokens ({profile.manager_role}), "
            f"check the credential in {profile.source}"
            if resp.status_code in (401, 403)
            else ""
        )
        raise CleanupError(
            f"target {profile.name!r}: listing tokens with admin_token returned {resp.status_code}, expected 200{hint}"
        )
    try:
        items = resp.json()
    except ValueError:
        raise CleanupError(f"target {profile.name!r}: the token list is not JSON") from None
    if not isinstance(items, list):
        raise CleanupError(f"target {profile.name!r}: the token list is a {type(items).__name__}, not a JSON array")
    return items


@dataclass
class Tally:
    """What the deletes did so far."""

    deleted: list[Leftover] = field(default_factory=list)
    gone: list[Leftover] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def delete_all(client: ApiClient, conn: Connection, leftovers: Sequence[Leftover], tally: Tally) -> None:
    """Delete each token by id, printing progress; a 404 counts as already gone, a failure does not stop the rest."""
    for t in leftovers:
        row = f"{t.id}  {_shown(t.name)}"
        try:
            resp = client.delete_token(conn.admin_token, t.id, form=conn.admin_form)
        except httpx.HTTPError as exc:
            why = f"no response ({type(exc).__name__})"
        else:
            if resp.is_success:
                tally.deleted.append(t)
                _say(f"  deleted       {row}")
                continue
            if resp.status_code == 404:
                tally.gone.append(t)
                _say(f"  already gone  {row} (404)")
                continue
            why = f"answered {resp.status_code}"
        tally.failures.append(Failure(t, why))
        _say(f"  FAILED        {row}: {why}")


def confirm(client: ApiClient, conn: Connection, tally: Tally) -> None:
    """List again: a token the target still lists was not deleted, whatever the delete answered."""
    try:
        resp = client.list_tokens(conn.admin_token, form=conn.admin_form)
        items = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        items = None
    if not isinstance(items, list):
        _say("  (could not list the tokens again to confirm the deletes)")
        return
    # an id listed under another name is a new token that was given a freed id, not ours
    listed = {
        (token_id(i.get("id")), i["name"]) for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)
    }
    for done in (tally.deleted, tally.gone):
        for t in [t for t in done if (t.id, t.name) in listed]:
            done.remove(t)
            tally.failures.append(Failure(t, "still listed after the delete"))
            _say(f"  STILL LISTED  {t.id}  {_shown(t.name)}: the target still lists it after the delete")


def admin_client(profile: TargetProfile, conn: Connection) -> ApiClient:
    """A client for the target ``connect`` reached, built as a run builds its own."""
    return ApiClient.for_profile(profile, conn.url)


# -- the command ------------------------------------------------------------------------


def cleanup(profile: TargetProfile, run_id: str | None, yes: bool) -> int:
    assert profile.admin_token is not None
    conn = connect(profile, profile.url, profile.admin_token, strict_admin=True)
    with admin_client(profile, conn) as client:
        items = list_tokens(client, profile, conn)
        leftovers, skipped = select(items, run_id)
        pattern = (run_prefix(run_id) if run_id else f"{NAME_PREFIX}<run id>-") + "…"
        where = f"target {profile.name!r} at {conn.url}"
        if not leftovers and not skipped:
            _say(f"nothing to clean: {where} lists {_count(len(items))}, none named {pattern}")
            return EXIT_DONE
        _say(
            f"{where} lists {_count(len(items))}; {len(leftovers) + len(skipped)} named {pattern}"
            + (f", from {_runs(leftovers)}" if leftovers else "")
        )
        if leftovers:
            _say()
            for line in render_table(leftovers):
                _say(line)
        if skipped:
            _say()
            _say(f"skipped, cannot be deleted safely ({len(skipped)}):")
            for s in skipped:
                _say(f"  {_shown(s.name)}: {s.why}")
        _say()
        if not yes:
            if not leftovers:
                _say("dry run: nothing deleted; none of these can be deleted by id")
            else:
                these = "this 1 token" if len(leftovers) == 1 else f"these {len(leftovers)} tokens"
                _say(f"dry run: nothing deleted; pass --yes to delete {these}")
            return EXIT_DONE

        tally = Tally()
        if leftovers:
            _say(f"deleting {_count(len(leftovers))}:")
            try:
                delete_all(client, conn, leftovers, tally)
            except KeyboardInterrupt:
                _say(f"interrupted: {len(tally.deleted)} deleted, {len(tally.gone)} already gone")
                _complain("interrupted before every selected token was deleted; run again to see what is left")
                return EXIT_NOT_ALL_DELETED
            confirm(client, conn, tally)
    deleted, gone = len(tally.deleted), len(tally.gone)
    summary = f"{deleted + gone} of {_count(len(leftovers))} removed ({deleted} deleted, {gone} already gone)"
    problems = len(tally.failures) + len(skipped)
    if not problems:
        _say(f"done: {summary}")
        return EXIT_DONE
    _say(f"{summary}; {problems} could not be deleted")
    details = [f"{f.token.id} {_shown(f.token.name)!r} ({f.why})" for f in tally.failures]
    details += [f"{_shown(s.name)!r} ({s.why})" for s in skipped]
    _complain(f"{_count(problems)} named {pattern} could not be deleted: " + "; ".join(details))
    return EXIT_NOT_ALL_DELETED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    path = args.target or os.environ.get(TARGET_ENV) or None
    if path is None:
        parser.error(f"no target: pass --target PROFILE or set {TARGET_ENV}")
    try:
        profile = load_profile(path)
        REDACTOR.register(profile.admin_token, profile.bootstrap.token)
        if profile.managed:
            _say(
                f"nothing to clean: target {profile.name!r} ({profile.source}) is managed: the suite launches it for a "
                "run and throws it away afterwards"
            )
            return EXIT_DONE
        return cleanup(profile, args.run_id, args.yes)
    except HarnessError as exc:
        _complain(str(exc))
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
