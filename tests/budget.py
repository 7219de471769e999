"""How many examples a property test draws: its full number, or a tenth under mutation testing.

`scripts/mutation` sets ``IOTPIPE_MUTATION=1``: every test then runs once per mutant, so the
property tests draw fewer examples, derandomized (the same examples every run, so a mutant's
verdict does not depend on luck; the profile is loaded in tests/conftest.py).
"""

from __future__ import annotations

import os

MUTATION = bool(os.environ.get("IOTPIPE_MUTATION"))


def examples(n: int) -> int:
    """The number of examples to draw where the full run draws ``n``."""
    return max(10, n // 10) if MUTATION else n
