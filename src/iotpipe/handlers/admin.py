"""Lambda entry point of the admin function: the schema step, ``{"action": "init"}``.

Invoked by hand once per deployment (and after a change of contracts or a rotation of the
users' secrets); docs/deploy.md shows the command. It holds the master user's secret, which
neither the ingest nor the retrieval function can read.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from iotpipe import bootstrap
from iotpipe.admin import init_database
from iotpipe.errors import InvalidQueryError

logger = Logger(service="iotpipe-admin")
ACTIONS = ("init",)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run an admin action and return what it did."""
    action = event.get("action") if isinstance(event, dict) else None
    if action not in ACTIONS:
        raise InvalidQueryError("action", f"must be one of {', '.join(ACTIONS)}")
    result = init_database(bootstrap.current_settings()).to_dict()
    logger.info("schema ready", extra=result)
    return {"status": "ok", "action": action, **result}
