"""Bad daily deliveries of the synthetic churn CSV, and what each failure must say.

Each case writes one day's file from that day's good rows (``generate_batch``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from mlplatform.datasets.synthetic import generate_batch

ROWS = 1000
# Rows the content cases break (0-based, header excluded, as the check messages count them).
BAD_ROWS = [3, 17, 42]


def good_frame(day: str) -> pd.DataFrame:
    """The day's good rows."""
    return generate_batch(date.fromisoformat(day), ROWS, seed=42)


def write_csv(frame: pd.DataFrame, path: Path, **options) -> None:
    """Writes a delivery the way an upstream system would (no index)."""
    frame.to_csv(path, index=False, **options)


def _delete(frame: pd.DataFrame, path: Path) -> None:
    path.unlink()


def _empty(frame: pd.DataFrame, path: Path) -> None:
    path.write_bytes(b"")


def _ragged(frame: pd.DataFrame, path: Path) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[9] += ",surplus"  # line 10 of the file (line 1 is the header): row 8
    path.write_text("\n".join(lines) + "\n")


def _short_row(frame: pd.DataFrame, path: Path) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[9] = lines[9].rsplit(",", 1)[0]  # row 8 loses its last field, churned
    path.write_text("\n".join(lines) + "\n")


def _semicolons(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame, path, sep=";")


def _latin1(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.copy()
    frame.loc[7, "region"] = "zürich"  # row 7 is line 9 of the file
    write_csv(frame, path, encoding="latin-1")


def _drop_tenure(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame.drop(columns=["tenure_months"]), path)


def _header_only(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame.head(0), path)


def _set(column: str, *values) -> Callable[[pd.DataFrame, Path], None]:
    """Writes the day with ``column`` of the rows in BAD_ROWS set to ``values`` (in turn)."""

    def write(frame: pd.DataFrame, path: Path) -> None:
        frame = frame.astype({column: object})
        for row, value in zip(BAD_ROWS, values, strict=True):
            frame.loc[row, column] = value
        write_csv(frame, path)

    return write


def _no_spend(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame.assign(monthly_spend=None), path)


def _duplicate_ids(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.copy()
    frame.loc[BAD_ROWS[1:], "customer_id"] = frame.loc[BAD_ROWS[0], "customer_id"]
    write_csv(frame, path)


def _label_two(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.assign(churned=frame["churned"].astype(int))
    frame.loc[BAD_ROWS, "churned"] = 2
    write_csv(frame, path)


def _too_few_rows(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame.head(100), path)


@dataclass(frozen=True)
class Case:
    """One bad delivery and what its failure must say.

    Attributes:
        write: Writes the bad file for the day, given the day's good rows and the file path.
        check: The blocking raw_data check that must fail; None when the file itself is bad and
            the raw_data step must fail.
        says: Fragments the error message (or the check's description) must contain, besides
            the file's path.
    """

    write: Callable[[pd.DataFrame, Path], None]
    check: str | None
    says: tuple[str, ...] = field(default_factory=tuple)


ROWS_SAID = f"rows (0-based) {BAD_ROWS}"
FILE_CASES = {
    "missing_file": Case(_delete, None, ("no such file for partition 2026-03-02",)),
    "empty_file": Case(_empty, None, ("the file is empty (0 bytes)",)),
    "ragged_rows": Case(_ragged, None, ("malformed CSV", "line 10 has 13 fields", "has 12")),
    "semicolon_delimiter": Case(_semicolons, None, ("single column", "';' (semicolon)")),
    "latin1_encoding": Case(_latin1, None, ("not valid UTF-8", "byte 0xfc", "(line 9)")),
    "missing_column": Case(_drop_tenure, None, ("missing required column(s) tenure_months",)),
    "header_only_zero_rows": Case(_header_only, None, ("header but no data rows",)),
    "row_with_a_field_missing": Case(_short_row, None, ("line 10 has 11 field(s)", "has 12")),
}
CHECK_CASES = {
    "text_in_integer_column": Case(
        _set("tenure_months", "twelve", "ten", "3 years"),
        "schema",
        ("column 'tenure_months'", "not of type integer", f"at {ROWS_SAID}", "twelve"),
    ),
    "all_null_column": Case(
        _no_spend,
        "completeness",
        ("column=monthly_spend", f"{ROWS} unexpected row(s)", "rows (0-based) [0, 1, 2, 3,"),
    ),
    "unseen_strict_category": Case(
        _set("contract_type", "weekly", "weekly", "weekly"),
        "categories",
        ("column=contract_type", ROWS_SAID, "weekly"),
    ),
    "duplicate_ids": Case(_duplicate_ids, "unique_ids", ("column=customer_id", ROWS_SAID)),
    "negative_tenure": Case(
        _set("tenure_months", -1, -5, -12),
        "ranges",
        ("column=tenure_months", ROWS_SAID, "-5"),
    ),
    "label_maybe": Case(
        _set("churned", "maybe", "maybe", "unknown"),
        "schema",
        ("column 'churned'", "not of type boolean", f"at {ROWS_SAID}", "maybe"),
    ),
    "label_two_in_0_1_column": Case(
        _label_two, "schema", ("column 'churned'", "not of type boolean", f"at {ROWS_SAID}")
    ),
    "too_few_rows": Case(_too_few_rows, "row_count", ("ExpectTableRowCountToBeBetween", "100")),
}
