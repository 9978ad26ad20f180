"""Old module names kept for one release after a rename: importing one warns and gives the
module under its new name."""
from __future__ import annotations

import importlib
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Call from module ``old`` while it is imported: it becomes module ``new``, with a
    DeprecationWarning naming the new one."""
    warnings.warn(f"{old} was renamed {new}; the old name goes in the next release",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
