"""Data contracts (docs/contracts reference in README.md, "Data contracts").

`schema` holds the validated types, `parse` reads and validates YAML, `render` writes it back.
"""

from __future__ import annotations

from iotpipe.contract.parse import contract_from_dict, load_contract, parse_contract
from iotpipe.contract.render import contract_to_dict
from iotpipe.contract.schema import (
    DEFAULT_MISSING_VALUES,
    DEVICE_ID,
    IDENTIFIER,
    MAX_DEVICE_ID_LENGTH,
    RESERVED,
    TS,
    DataContract,
    Field,
    Slot,
)

__all__ = [
    "DEFAULT_MISSING_VALUES",
    "DEVICE_ID",
    "IDENTIFIER",
    "MAX_DEVICE_ID_LENGTH",
    "RESERVED",
    "TS",
    "DataContract",
    "Field",
    "Slot",
    "contract_from_dict",
    "contract_to_dict",
    "load_contract",
    "parse_contract",
]
