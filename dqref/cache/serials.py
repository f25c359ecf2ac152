"""Serial numbers of new references and mappings: never one that was ever used.

A serial is taken when a file of that name is in the folder, when a temporary file left
by an interrupted write was meant to become it, or when any mapping on disk names it.
The last rule matters when a file was deleted: an older context still names
``iris_dq_0002.fits``, and a new file under that name would silently change that context's
answer. Mappings are searched as bytes for the names (not parsed), so a mapping crds
cannot load, or one that is not UTF-8, still reserves every name it mentions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from dqref.atomic import temporary_target

#: Characters that may surround a file name in a mapping without being part of it.
_NAME_CHARACTER = rb"A-Za-z0-9_.\-"


def next_free_serial(stem: str, extension: str, folders: Iterable[Path],
                     mapping_dir: Path) -> int:
    """Return one more than the highest serial of ``<stem>_NNNN.<extension>`` ever used.

    Parameters
    ----------
    stem, extension : str
        The family, e.g. ``"iris_dq"`` and ``"fits"``, or ``"ligeriri_iris"`` and ``"imap"``.
    folders : iterable of Path
        Where files of the family live (missing folders are skipped).
    mapping_dir : Path
        The mapping folder; every mapping in it is searched for names of the family.
    """
    family = re.compile(rf"{re.escape(stem)}_(\d{{4,}})\.{re.escape(extension)}")
    serials = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = temporary_target(path.name) or path.name
            if match := family.fullmatch(name):
                serials.append(int(match.group(1)))
    mentioned = re.compile(rb"(?<![" + _NAME_CHARACTER + rb"])" +
                           family.pattern.encode() + rb"(?![" + _NAME_CHARACTER + rb"])")
    for mapping in _mapping_files(mapping_dir):
        serials.extend(int(m.group(1)) for m in mentioned.finditer(mapping.read_bytes()))
    return max(serials, default=0) + 1


def _mapping_files(mapping_dir: Path) -> list[Path]:
    if not mapping_dir.is_dir():
        return []
    return [path for path in mapping_dir.glob("*.?map") if path.is_file()]
