"""Regular expressions compiled on first use.

A family module may hold many patterns that a short run never needs (the credential shapes of the secrets
family match only literal values); compiling all of them at import is a noticeable share of a pre-commit run.
"""

from __future__ import annotations

import re
from typing import Any


class lazy_compile:
    """``re.compile(pattern, flags)``, compiled when one of its methods or attributes is first asked for."""

    def __init__(self, pattern: str, flags: int = 0):
        self._arguments = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what the instance does not hold yet; keeping it makes later lookups plain ones.
        if name.startswith("_"):  # not a pattern's (copy and pickle probe for hooks before __init__ ran)
            raise AttributeError(name)
        value = getattr(re.compile(*self._arguments), name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"lazy_compile{self._arguments!r}"
