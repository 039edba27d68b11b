"""Suite-wide setup: the on-disk cache (tbyte_policy.cache) goes to a fresh folder for the run, so tests never
read or write the user's own cache, and every test after the first that needs an entry runs with it warm."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE_DIR = tempfile.mkdtemp(prefix="tbyte-policy-test-cache-")


def pytest_configure(config) -> None:
    # Set before collection: test modules load the catalogue at import.
    os.environ["TBYTE_POLICY_CACHE_DIR"] = _CACHE_DIR


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
