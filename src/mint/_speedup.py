"""Loading mint's optional C extensions (``mint._speedups``, ``mint._iospeedups``).

Every module with a C hot path loads it here, so one switch turns them all off:
``MINT_NO_SPEEDUPS=1`` in the environment forces the pure-Python paths (which CI
tests on their own).
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def load_speedup(name: str = "mint._speedups") -> Any:
    """An optional C extension (``mint._speedups`` by default) when it is importable."""
    if os.environ.get("MINT_NO_SPEEDUPS", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
