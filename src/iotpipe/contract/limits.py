"""The storage engines' limits a contract must fit, checked when the contract is validated.

MySQL/InnoDB is the stricter engine (SQLite allows 2,000 columns and has no row-size limit):
at most 1,017 columns in an InnoDB table, and at most 65,535 bytes per row counting every
column except TEXT/BLOB, which count 12. An error names the field that crosses a limit, so
``iotpipe contract check`` says what to change instead of a CREATE TABLE failing at ingest.
"""

from __future__ import annotations

from iotpipe.contract.schema import DataContract, Field
from iotpipe.errors import ContractError

MAX_COLUMNS = 1017
MAX_ROW_BYTES = 65_535
BYTES_PER_CHAR = 4  # utf8mb4
MAX_CATEGORY_CHARS = 255  # categories are VARCHAR(255)
MAX_VARCHAR_CHARS = 1024  # longer strings are TEXT
TEXT_BYTES = 12
_FIXED_BYTES = {"number": 8, "integer": 8, "boolean": 1, "datetime": 8}
DATETIME_BYTES = 8
CODE_BYTES = 4
ONEHOT_BYTES = 1


def _varchar(chars: int) -> int:
    size = chars * BYTES_PER_CHAR
    return size + (1 if size < 256 else 2)  # noqa: PLR2004 (the length prefix grows at 256)


def _field_bytes(f: Field) -> int:
    if f.type in _FIXED_BYTES:
        size = _FIXED_BYTES[f.type]
    elif f.type == "category":
        size = _varchar(MAX_CATEGORY_CHARS)
    elif f.max_length and f.max_length <= MAX_VARCHAR_CHARS:
        size = _varchar(f.max_length)
    else:
        size = TEXT_BYTES
    if f.code_column:
        size += CODE_BYTES + ONEHOT_BYTES * len(f.onehot_columns)
    return size


def check_engine_limits(contract: DataContract) -> None:
    """Raise `ContractError` naming the first field that makes the table too wide for MySQL.

    Parameters
    ----------
    contract
        A contract whose fields are otherwise valid.
    """
    columns = 2  # device_id, ts
    row_bytes = _varchar(contract.device_id_length) + DATETIME_BYTES
    for i, f in enumerate(contract.fields):
        columns += 1 + (1 if f.code_column else 0) + len(f.onehot_columns)
        row_bytes += _field_bytes(f)
        null_bitmap = (columns + 7) // 8
        if columns > MAX_COLUMNS:
            raise ContractError(
                f"fields[{i}] ({f.name})",
                f"the table would have {columns} columns; MySQL/InnoDB allows {MAX_COLUMNS}",
            )
        if row_bytes + null_bitmap > MAX_ROW_BYTES:
            raise ContractError(
                f"fields[{i}] ({f.name})",
                f"a row would take {row_bytes + null_bitmap:,} bytes in MySQL, over its "
                f"{MAX_ROW_BYTES:,}-byte limit: lower maxLength, or drop fields",
            )
