"""ML encoding of categorical columns: stable integer codes, plus one-hot for closed vocabularies.

Codes come from an injected `iotpipe.model.CategoryDictionary` (a port: storage implements it
with a table that is safe under concurrent writers; `InMemoryCategoryDictionary` serves dry
runs and tests).
A code, once given to a value, never changes. Closed vocabularies are registered in their
contract order first, so on a fresh dictionary their codes are 1..n in that order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from iotpipe.contract import DataContract
from iotpipe.model import CategoryDictionary


class InMemoryCategoryDictionary:
    """A process-local `CategoryDictionary` (thread-safe)."""

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], dict[str, int]] = {}
        self._lock = threading.Lock()

    def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Return (and assign where new) the codes of ``values``."""
        with self._lock:
            table = self._codes.setdefault((dataset, column), {})
            for value in values:
                if value not in table:
                    table[value] = len(table) + 1
            return {value: table[value] for value in values}


class Encoder:
    """Add ``<field>_code`` and one-hot ``<field>_<value>`` columns to clean rows.

    `encode` asks the dictionary for the codes of new values. `encode_known` never does, so
    another thread may call it (the ingest pipeline's cleaning thread) while the dictionary
    is only ever used by the thread that calls `encode`: each field's known codes are
    replaced, not changed in place, when new ones arrive.

    Parameters
    ----------
    contract
        The contract whose categorical fields are encoded.
    dictionary
        Where codes come from.
    """

    def __init__(self, contract: DataContract, dictionary: CategoryDictionary) -> None:
        self.contract = contract
        self.dictionary = dictionary
        self._known: dict[str, Mapping[str, int]] = {}
        for f in contract.categories:
            self._known[f.name] = dict(
                dictionary.codes(contract.name, f.name, list(f.enum)) if f.enum else {}
            )

    def encode(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Return ``rows`` with the code and one-hot columns of every categorical field.

        Parameters
        ----------
        rows
            Clean rows (categorical values already case-folded and validated).

        Returns
        -------
        pl.DataFrame
            The rows with columns in `DataContract.output_columns` order.
        """
        self.learn(rows)
        encoded = self.encode_known(rows)
        assert encoded is not None  # every value has a code now
        return encoded

    def learn(self, rows: pl.DataFrame) -> None:
        """Give each category value of ``rows`` that has none a code (`encode` without columns).

        Codes follow the order values show up: a load that encodes its rows later, in another
        order (`iotpipe.storage.readings.FileLoad`, once it keeps sorted runs), learns them
        here first, in the file's order.
        """
        for f in self.contract.categories:
            known = self._known[f.name]
            new = [v for v in _distinct(rows.get_column(f.name)) if v not in known]
            if new:
                codes = self.dictionary.codes(self.contract.name, f.name, new)
                self._known[f.name] = {**known, **codes}

    def encode_known(self, rows: pl.DataFrame) -> pl.DataFrame | None:
        """Return `encode`'s result when every value already has a code; None otherwise.

        The dictionary is not used.
        """
        encoded: list[pl.Expr] = []
        for f in self.contract.categories:
            known = self._known[f.name]  # this field's codes as they are now
            if any(v not in known for v in _distinct(rows.get_column(f.name))):
                return None
            column = pl.col(f.name)
            encoded.append(
                column.replace_strict(known, default=None, return_dtype=pl.Int32).alias(
                    f"{f.name}_code"
                )
            )
            encoded.extend(
                (column == value).fill_null(False).cast(pl.Int8).alias(name)
                for value, name in f.onehot_columns.items()
            )
        return rows.with_columns(encoded).select(self.contract.output_columns)


def _distinct(column: pl.Series) -> Iterable[str]:
    # First-appearance order, so codes follow the order values show up in the data.
    return [v for v in column.drop_nulls().unique(maintain_order=True).to_list() if v is not None]
