"""The requirement catalogue: every check traces to one of these.

The catalogue is one data file, ``requirements.yaml`` beside this module. Each entry has
an ``id`` (``ST-<AREA>-<NNN>``), a ``level`` (MUST or SHOULD), a one-line ``title`` and
the ``source``: the public text that states it, one or more parts separated by ``"; "``,
each naming its kind (:data:`SOURCE_KINDS`): a section of the product page, an operation or
model of the vendor OpenAPI spec, a file of the ``sts`` CLI's source, a template of the
Helm chart, or a standard. A source that names none of them is refused when the catalogue
is read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("requirements.yaml")
_ID = re.compile(r"^ST-[A-Z]+-\d{3}$")
LEVELS = ("MUST", "SHOULD")
#: what a source part starts with, and the public text each prefix names
SOURCE_KINDS: dict[str, str] = {
    "seed: ": "a section of the product page (its heading)",
    "spec: ": "an operation or model of the vendor OpenAPI spec",
    "cli: ": "a file of the sts CLI's source (StackVista/stackstate-cli)",
    "chart: stackstate-k8s ": "a template or values file of the Helm chart (StackVista/helm-charts)",
    "RFC ": "a standard",
    "OWASP ": "a standard of the OWASP Foundation (the API Security Top 10)",
}


_LABEL = re.compile(r"^[A-Za-z][\w -]*: ")


def source_parts(source: str) -> list[str]:
    """The parts of a source, each naming one public text.

    Parts are separated by ``"; "`` outside parentheses; a piece that does not start with a
    label (``word: ``) goes on the part before it (``cli: --url flags; STS_CLI_URL environment``).
    """
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(source):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth == 0:
            pieces.append(source[start:i].strip())
            start = i + 1
    pieces.append(source[start:].strip())
    parts: list[str] = []
    for piece in filter(None, pieces):
        if parts and not _LABEL.match(piece) and not piece.startswith(("RFC ", "OWASP ")):
            parts[-1] = f"{parts[-1]}; {piece}"
        else:
            parts.append(piece)
    return parts


def source_kind(part: str) -> str | None:
    """The kind prefix a source part starts with (a key of :data:`SOURCE_KINDS`), or None."""
    return next((kind for kind in SOURCE_KINDS if part.startswith(kind)), None)


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str
    title: str
    source: str
    area: str


@functools.cache
def catalogue(path: Path = CATALOGUE) -> dict[str, Requirement]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, Requirement] = {}
    for entry in data["requirements"]:
        rid = entry["id"]
        if not _ID.match(rid):
            raise ValueError(f"{path}: requirement id {rid!r} is not of the form ST-AREA-NNN")
        if rid in out:
            raise ValueError(f"{path}: requirement id {rid} appears twice")
        level = entry["level"]
        if level not in LEVELS:
            raise ValueError(f"{path}: {rid} has level {level!r}, expected MUST or SHOULD")
        source = str(entry.get("source") or "").strip()
        unnamed = [part for part in source_parts(source) if source_kind(part) is None] or ([] if source else [""])
        if unnamed:
            raise ValueError(
                f"{path}: {rid} has a source part {unnamed[0]!r} that names no public text: each part starts "
                f"with one of {', '.join(repr(k.strip()) for k in SOURCE_KINDS)}"
            )
        out[rid] = Requirement(rid, level, entry["title"].strip(), source, rid.split("-")[1])
    return out


def catalogue_version(path: Path = CATALOGUE) -> str:
    return str(yaml.safe_load(path.read_text(encoding="utf-8")).get("version", "0"))


def sources_markdown(path: Path = CATALOGUE) -> str:
    """``docs/sources.md``: each requirement with the public text it rests on.

    Written by ``python -m sts_conformance.core.requirements > docs/sources.md``.
    """
    reqs = catalogue(path)
    lines = [
        "# Where each requirement comes from",
        "",
        "Generated from `sts_conformance/core/requirements.yaml` (catalogue version "
        f"{catalogue_version(path)}) by `python -m sts_conformance.core.requirements > docs/sources.md`;",
        "the project's tests check that this page agrees with the catalogue.",
        "",
        "Each source names the public text that states the requirement:",
        "",
        *(f"- `{kind.strip()}` {what}" for kind, what in SOURCE_KINDS.items()),
        "",
        "A MUST rests on such a text. Where the public texts leave a behaviour open, the",
        "requirement is a SHOULD and its source says what is left open.",
        "",
        "| id | level | requirement | source |",
        "|---|---|---|---|",
    ]
    for req in reqs.values():
        cells = (req.id, req.level, req.title, "<br>".join(source_parts(req.source)))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(sources_markdown())
