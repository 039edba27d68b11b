"""Suite-wide setup: the on-disk cache (tbyte_policy.cache) goes to a fresh folder for the run, so tests never
read or write the user's own cache, and every test after the first that needs an entry runs with it warm."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_CACHE_DIR = tempfile.mkdtemp(prefix="tbyte-policy-test-cache-")
_EXAMPLES = Path(__file__).resolve().parents[1] / ".hypothesis" / "examples"


def pytest_configure(config) -> None:
    # Set before collection: test modules load the catalogue at import.
    os.environ["TBYTE_POLICY_CACHE_DIR"] = _CACHE_DIR


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


# The fuzzing campaign (tests/fuzz, marker `fuzz`) takes its example counts from these profiles; every other
# property in the suite sets its own. `short` is every run's (about a minute of fuzzing); `long` is the deeper
# search: pytest -m fuzz --hypothesis-profile long.
# `short` draws the same examples on every run (derandomize: seeded from each test's own code), so the suite's
# verdict on a commit does not change from one run to the next: CI once failed on an input a random short run
# drew for the first time, on a commit whose suite had passed three times. Its failures reproduce by running it
# again, and it reports them as found: shrinking a CLI run's input takes minutes, which `long` spends.
# `long` searches at random, before a change lands; its failing examples are kept in .hypothesis/ (replayed
# first next time), and the ones worth keeping forever become fixtures in tests/fuzz/regressions/.
settings.register_profile("short", max_examples=80, derandomize=True, database=None, print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.register_profile("long", max_examples=3000, database=DirectoryBasedExampleDatabase(_EXAMPLES),
                          print_blob=True)
settings.load_profile("short")
