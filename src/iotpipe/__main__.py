"""Allow ``python -m iotpipe``."""

from __future__ import annotations

from iotpipe.cli import main

raise SystemExit(main())
