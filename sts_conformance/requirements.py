"""The requirement catalogue: every check traces to one of these.

The catalogue is one data file, ``requirements.yaml`` beside this module. Each entry has
an ``id`` (``ST-<AREA>-<NNN>``), a ``level`` (MUST or SHOULD), a one-line ``title`` and
the ``source`` it comes from (a seed-document section, the vendor OpenAPI spec, or the
behaviour of the public ``sts`` CLI).
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
        out[rid] = Requirement(rid, level, entry["title"].strip(), entry["source"].strip(), rid.split("-")[1])
    return out


def catalogue_version(path: Path = CATALOGUE) -> str:
    return str(yaml.safe_load(path.read_text(encoding="utf-8")).get("version", "0"))
