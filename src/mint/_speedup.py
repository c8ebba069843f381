"""Loading mint's optional C extensions (``mint._speedups``, ``mint._iospeedups``).

Every module with a C hot path loads it here, so one switch turns them all off:
``MINT_NO_SPEEDUPS=1`` in the environment forces the pure-Python paths (which CI
tests on their own).
"""

from __future__ import annotations

import dataclasses
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


def install_constructors(*classes: type) -> bool:
    """Give each of these frozen, slotted dataclasses the C constructor, when built.

    The values mint hands out or a caller builds per message (``Data``, ``Binary``)
    are constructed on the hot path, and calling a class whose ``__init__`` is Python
    enters a Python frame from C: ``_speedups.constructor`` makes a positional call
    store its arguments straight into the slots (about 210 → 60 ns), and leaves every
    other call (keywords, a wrong count, a subclass, a patched ``__init__``) to the
    class's own ``__init__``. A field with a ``default_factory`` needs ``__init__`` to
    run it: such a class is left as it is. Returns whether the C module was there.
    """
    speedups = load_speedup()
    if speedups is None:
        return False
    for cls in classes:
        fields = dataclasses.fields(cls)
        if any(f.default_factory is not dataclasses.MISSING for f in fields):
            continue
        speedups.constructor(
            cls,
            tuple(cls.__dict__[f.name] for f in fields),
            tuple(f.default for f in fields if f.default is not dataclasses.MISSING),
        )
    return True
