"""Without the `live` extra the suite still runs: the live tests skip, saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_live_tests_skip_with_a_reason_without_the_kubernetes_client():
    blocked = ("import sys; sys.modules['kubernetes'] = None; import pytest; "
               "sys.exit(pytest.main(['tests/live/test_collect.py', '-q', '-rs', '-p', 'no:cacheprovider']))")
    result = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" not in result.stdout and " failed" not in result.stdout
    assert "kubernetes is not installed" in result.stdout and " skipped" in result.stdout
