"""Live mode: audit objects read from a running cluster (needs the ``kubernetes`` extra).

Importing this package never imports ``kubernetes``; only :func:`collect` does.
"""

from .collect import Collection, LiveError, collect
from .rbac import rbac_manifest

__all__ = ["Collection", "LiveError", "collect", "rbac_manifest"]
