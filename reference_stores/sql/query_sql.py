"""SQL expressions the QueryAPI needs that differ by dialect: token counts read out of the JSON
text columns, a string field of a JSON object, "has every tag", exact text comparison and keyset
conditions.

JSON columns hold text (``schema.py``), so each dialect reads them with its own JSON functions:
SQLite ``json_type``/``json_extract``/``->``, PostgreSQL the ``json`` type's ``->`` (never
``jsonb``, which would rewrite ``1e16`` as an integer and refuse ``\\u0000``, and never ``->>``,
which would unescape it), MariaDB ``JSON_EXTRACT``. A token field counts when it is a JSON
integer >= 0 (section 4 of the spec): SQLite's ``json_type`` says ``integer``; elsewhere the
field's JSON text is all digits (a float always has a ``.`` or an exponent, a string its quotes).
Values are 64-bit (the model's limit); their sums are exact on every backend (``token_sums``).
On SQLite alone a run's input + output past 2**63 - 1 becomes a float where ``min_tokens`` and
``token_usage_desc`` compare it (no realistic run comes near).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql
except ImportError:  # DEP-1: importable without the `sql` extra
    sa = None  # type: ignore[assignment]
    postgresql = None  # type: ignore[assignment]

from reference_stores.sql.codec import dump_json
from reference_stores.sql.schema import MYSQL_DIALECTS

#: The token fields of section 4.
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "total_tokens",
)
#: MariaDB compares TEXT with PAD SPACE collations ('a' = 'a '); this one compares every byte.
MYSQL_EXACT = "utf8mb4_nopad_bin"
DIGITS = "^[0-9]+$"
LOW_BITS = 2**32 - 1
#: Token arithmetic on PostgreSQL and MariaDB: DECIMAL digits (64-bit counts, sums past that).
WIDE_DIGITS = 65


class Expressions:
    """The dialect-dependent expressions of one database."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.mysql = dialect in MYSQL_DIALECTS
        self.postgres = dialect == "postgresql"

    # -- JSON fields ----------------------------------------------------------------------------
    def _json_text(self, column: Any, key: str) -> Any:
        """The JSON text of ``column``'s field ``key`` (NULL when absent)."""
        if self.postgres:
            return sa.cast(sa.cast(column, postgresql.JSON).op("->")(key), sa.Text)
        if self.mysql:
            return sa.func.json_extract(column, f"$.{key}")
        return column.op("->")(f"$.{key}")

    def token_count(self, column: Any, key: str) -> Any:
        """Field ``key`` of the JSON object in ``column`` when it is an int >= 0, else NULL."""
        if self.dialect == "sqlite":
            path = f"$.{key}"
            value = sa.func.json_extract(column, path)
            counts = sa.and_(sa.func.json_type(column, path) == "integer", value >= 0)
            return sa.case((counts, value), else_=sa.null())
        text = self._json_text(column, key)
        counts = text.op("~" if self.postgres else "REGEXP")(DIGITS)
        # DECIMAL: a run's input + output, and any sum, may pass 2**63 - 1.
        return sa.case((counts, sa.cast(text, sa.Numeric(WIDE_DIGITS, 0))), else_=sa.null())

    def total_tokens(self, column: Any) -> Any:
        """A run's total tokens: ``total_tokens`` when it counts, else input + output."""
        total = self.token_count(column, "total_tokens")
        parts = sa.func.coalesce(self.token_count(column, "input_tokens"), 0) + sa.func.coalesce(
            self.token_count(column, "output_tokens"), 0
        )
        return sa.case((total.is_not(None), total), else_=parts)

    def token_sums(self, column: Any, only: Any = None) -> list[Any]:
        """SUM columns of the four token fields and of the runs' totals, over the rows where
        ``only`` holds (all rows without it); ``token_figures`` reads a row of them back.

        SQLite's integers are 64-bit and its SUM fails past 2**63 - 1: there each count is
        summed as its high and low 32 bits, which no realistic number of rows overflows."""

        def total(pick: Callable[[Any], Any]) -> Any:
            total_tokens = self.token_count(column, "total_tokens")
            parts: Any = sa.func.coalesce(pick(self.token_count(column, "input_tokens")), 0)
            parts = parts + sa.func.coalesce(pick(self.token_count(column, "output_tokens")), 0)
            return sa.case((total_tokens.is_not(None), pick(total_tokens)), else_=parts)

        def summed(value: Any) -> Any:
            return sa.func.sum(value if only is None else sa.case((only, value), else_=sa.null()))

        fields = [self.token_count(column, name) for name in TOKEN_FIELDS[:4]]
        if self.dialect != "sqlite":
            return [summed(v) for v in fields] + [summed(total(lambda v: v))]
        halves: tuple[Callable[[Any], Any], ...] = (_high, _low)
        columns = [summed(half(v)) for v in fields for half in halves]
        return columns + [summed(total(half)) for half in halves]

    def token_figures(self, sums: Sequence[Any]) -> list[int]:
        """input, output, cache read, cache creation and total tokens from ``token_sums``."""
        values = [int(v or 0) for v in sums]  # SUM of no row is NULL
        if self.dialect != "sqlite":
            return values
        return [(high << 32) + low for high, low in zip(values[::2], values[1::2], strict=True)]

    def string_json(self, column: Any, key: str) -> Any:
        """The JSON text of field ``key`` when it is a string (decode it with json.loads), else
        NULL. The text, not the value: a lone surrogate or NUL escape survives the trip."""
        text = self._json_text(column, key)
        if self.dialect == "sqlite":
            is_string = sa.func.json_type(column, f"$.{key}") == "text"
        else:
            is_string = text.like('"%')
        return sa.case((is_string, text), else_=sa.null())

    # -- text and tags --------------------------------------------------------------------------
    def exact(self, column: Any) -> Any:
        """``column`` compared byte for byte (MariaDB pads TEXT comparisons with spaces)."""
        return column.collate(MYSQL_EXACT) if self.mysql else column

    def has_tags(self, column: Any, tags: frozenset[str]) -> Any:
        """The JSON array of strings in ``column`` holds every one of ``tags``."""
        if self.postgres:
            # Compare each element's JSON text with the tag as the store writes it (no unescape).
            conditions = []
            for tag in sorted(tags):
                element = (
                    sa.func.json_array_elements(sa.cast(column, postgresql.JSON))
                    .table_valued("value")
                    .alias()
                )
                text = sa.cast(element.c.value, sa.Text)
                conditions.append(
                    sa.exists(sa.select(1).select_from(element).where(text == dump_json(tag)))
                )
            return sa.and_(*conditions)
        if self.mysql:
            return sa.and_(
                *(sa.func.json_contains(column, dump_json([tag])) == 1 for tag in sorted(tags))
            )
        conditions = []
        for tag in sorted(tags):
            element = sa.func.json_each(column).table_valued("value", "type").alias()
            conditions.append(
                sa.exists(
                    sa.select(1)
                    .select_from(element)
                    .where(element.c.type == "text", element.c.value == tag)
                )
            )
        return sa.and_(*conditions)

    # -- keyset ---------------------------------------------------------------------------------
    def after(self, key: Any, ids: Any, value: Any, record_id: str, descending: bool) -> Any:
        """Rows strictly after position (value, record_id) in the order (key, id)."""
        if self.mysql:
            # MariaDB ranges an index over this spelling, not over a row comparison.
            if descending:
                return sa.or_(key < value, sa.and_(key == value, ids < record_id))
            return sa.or_(key > value, sa.and_(key == value, ids > record_id))
        position = sa.tuple_(sa.literal(value), sa.literal(record_id, type_=ids.type))
        row = sa.tuple_(key, ids)
        return row < position if descending else row > position


def _high(value: Any) -> Any:
    return value.op(">>")(32)


def _low(value: Any) -> Any:
    return value.op("&")(LOW_BITS)
