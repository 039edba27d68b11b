"""An on-disk cache of data derived from files, so that a short run (a pre-commit hook on one file) does not
parse the rule catalogue or a release's schema definitions every time.

An entry is kept under ``$TBYTE_POLICY_CACHE_DIR``, else ``$XDG_CACHE_HOME/tbyte-policy``, else
``~/.cache/tbyte-policy``, as marshal data together with the key it was built for: the tool and Python
versions and the path, size, modification time and inode of every file the data comes from (including the
module whose code derives it). A run whose key differs rebuilds the entry, so an entry is never served stale.
The cache is only an optimisation: an unreadable, corrupt or unwritable one is silently ignored. Like
Python's own bytecode cache, the folder is trusted: marshal data is not safe to read from a folder that
others can write to.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tbyte_policy import __version__

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def cache_dir() -> Path:
    override = os.environ.get("TBYTE_POLICY_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "tbyte-policy"


def _fingerprint(path: Path) -> tuple:
    try:
        stat = path.stat()
    except OSError:
        return str(path), None  # a missing source is part of the key too: its appearance invalidates
    return str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev


def cached(name: str, sources: Iterable[Path], build: Callable[[], Any]) -> Any:
    """``build()``, or what it returned last time for the same sources (same paths, sizes, mtimes).

    ``name`` names the entry; ``build`` must return data that marshal can store (dicts, lists, tuples,
    strings, numbers, sets): anything else is just not cached.
    """
    fingerprints = tuple(_fingerprint(Path(source)) for source in sources)
    key = (__version__, sys.version, name, fingerprints)
    # One file per entry and installation: an edited source overwrites it, while two installations (a project's
    # virtualenv and pre-commit's, say) keep one each instead of rebuilding each other's.
    installation = zlib.crc32(repr((sys.version, [fingerprint[0] for fingerprint in fingerprints])).encode())
    try:
        path = cache_dir() / f"{_UNSAFE.sub('_', name)}-{installation:08x}.marshal"
    except RuntimeError:  # no home directory to put it in
        return build()
    try:
        stored_key, data = marshal.loads(path.read_bytes())
        if stored_key == key:
            return data
    except (OSError, EOFError, ValueError, TypeError):  # missing, unreadable or corrupt: rebuild
        pass
    data = build()
    _store(path, key, data)
    return data


def _store(path: Path, key: tuple, data: Any) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        payload = marshal.dumps((key, data))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(payload)
        os.replace(temporary, path)  # readers see the old entry or the new one, never half of one
    except (OSError, ValueError):
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
