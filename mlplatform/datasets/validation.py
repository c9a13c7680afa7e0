"""Enforces a data-set spec on a frame: schema, types, nulls, ranges, domains and unique ids.

Invalid rows never pass silently: hard violations raise ``DataValidationError`` with the source,
column, rule, row numbers and offending values; soft findings (unseen categories in a column whose
domain is not strict) are returned as warnings.

Row numbers: the index of a loaded raw frame is each row's 0-based data-row number in its source
(header excluded; see ``loading``), so every row reported here is an index label, not a position,
and a value at file data row 1003 is reported as row 1003 even when the frame holds only that
row's day. The typed frames returned keep the input's index. A frame whose index is not integer
falls back to 0-based positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import pandas as pd

from mlplatform.datasets.spec import ColumnSpec, DatasetSpec

SAMPLE_SIZE = 5
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes:
        column: Column concerned ("<table>" for table-level rules).
        rule: Short rule name, e.g. "not_null", "range", "domain", "unique", "type".
        count: Number of offending rows.
        rows: Sample of offending rows: the frame's index labels, i.e. 0-based data-row
            numbers in the source (see the module docstring), in frame order.
        values: Sample of offending values.
        detail: Human-readable explanation.
    """

    column: str
    rule: str
    count: int
    rows: tuple[int, ...] = ()
    values: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        """One line naming column, rule, count, rows and values."""
        where = f" at rows (0-based) {list(self.rows)}" if self.rows else ""
        values = f" (values {list(self.values)})" if self.values else ""
        return f"column '{self.column}': {self.detail} [{self.rule}, {self.count} row(s)]{where}{values}"


@dataclass
class ValidationReport:
    """The outcome of validating one frame against a spec."""

    source: str
    rows: int
    errors: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no hard rule is broken."""
        return not self.errors

    def summary(self) -> str:
        """Multi-line description of every error and warning."""
        lines = [
            f"{self.source}: {self.rows} rows, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        ]
        lines += [f"  ERROR {v.describe()}" for v in self.errors]
        lines += [f"  WARN  {v.describe()}" for v in self.warnings]
        return "\n".join(lines)


class DataValidationError(ValueError):
    """Rows break the data-set spec; the message names the source, columns, rows and values."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


def _violation(column: str, rule: str, mask: pd.Series, values: pd.Series, detail: str):
    positions = np.flatnonzero(mask.to_numpy())
    sample = positions[:SAMPLE_SIZE]
    labels = mask.index
    # The index holds source row numbers (module docstring); any other index says nothing a
    # reader can find in the file, so positions are the better guess there.
    rows = labels[sample] if pd.api.types.is_integer_dtype(labels) else sample
    return Violation(
        column=column,
        rule=rule,
        count=int(len(positions)),
        rows=tuple(int(r) for r in rows),
        values=tuple(str(values.iloc[p]) for p in sample),
        detail=detail,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _coerce_bool(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    # pandas reads a 0/1 column with a blank as float (1.0, 0.0, NaN), whose text "1.0" is no
    # boolean word; numbers are therefore compared as numbers: 1 and 0 only, nothing else.
    if pd.api.types.is_numeric_dtype(raw.dtype):
        number = np.ones(len(raw), dtype=bool)
    else:
        number = np.fromiter((_is_number(v) for v in raw), dtype=bool, count=len(raw))
    numeric = pd.to_numeric(raw.where(number), errors="coerce")
    numeric = numeric.to_numpy(dtype="float64", na_value=np.nan)
    text = raw.astype(str).str.strip().str.lower().to_numpy()
    true = np.where(number, numeric == 1, np.isin(text, list(_TRUE)))
    false = np.where(number, numeric == 0, np.isin(text, list(_FALSE)))
    parsed = pd.array(np.full(len(raw), pd.NA), dtype="boolean")
    parsed[true] = True
    parsed[false] = False
    parsed = pd.Series(parsed, index=raw.index)
    bad = raw.notna() & parsed.isna()
    return parsed, bad


def _coerce(column: ColumnSpec, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Returns the column in its spec type and a mask of present values that could not convert."""
    if column.type in ("integer", "float"):
        parsed = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & parsed.isna()
        if column.type == "integer":
            # Fractions and values beyond int64 are not integers; blank them so the cast holds.
            not_int = parsed.notna() & ((parsed % 1 != 0) | (parsed.abs() >= 2**63))
            bad = bad | not_int
            parsed = parsed.where(~not_int)
        return parsed.astype("float64" if column.type == "float" else "Int64"), bad
    if column.type == "boolean":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean"), pd.Series(False, index=raw.index)
        return _coerce_bool(raw)
    if column.type == "date":
        parsed = pd.to_datetime(raw, errors="coerce")
        return parsed, raw.notna() & parsed.isna()
    text = raw.astype("string").str.strip()
    values = text.astype(object).where(raw.notna(), None)
    if column.type == "category":
        # Stored as codes + categories: a day's pickle loads without building a string object per
        # row, and counting categories (drift) is a bincount of the codes. The domain comes first
        # so days share their categories and pd.concat keeps the dtype; unseen values (allowed
        # when the domain is not strict) follow, sorted, and make that day's dtype differ
        # (concat then yields object: consumers treat both alike).
        values = values.astype("category")
        unseen = sorted(set(values.cat.categories) - set(column.domain), key=str)
        values = values.cat.set_categories([*dict.fromkeys(column.domain), *unseen])
    return values, pd.Series(False, index=raw.index)


def coerce_frame(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, list[Violation]]:
    """Converts the spec's columns that are present to their declared types.

    Blank text counts as missing; a present value that does not parse becomes missing and is
    reported, with its row and value, as a ``type`` violation.

    Args:
        frame: Rows as loaded; the index holds their source row numbers (module docstring).
        spec: The data-set spec.

    Returns:
        A tuple ``(typed_frame, type_violations)``; ``typed_frame`` has ``frame``'s index, and
        columns absent from ``frame`` are absent from it too.
    """
    typed, violations = {}, []
    for name, column in spec.columns.items():
        if name not in frame.columns:
            continue
        raw = frame[name]
        if raw.dtype == object:
            raw = raw.mask(raw.astype(str).str.strip() == "")
        parsed, bad_type = _coerce(column, raw)
        typed[name] = parsed
        if bad_type.any():
            violations.append(
                _violation(name, "type", bad_type, raw, f"values are not of type {column.type}")
            )
    # Built from arrays, not Series: aligning on a repeated index label would fail or duplicate.
    columns = {name: series.array for name, series in typed.items()}
    return pd.DataFrame(columns, index=frame.index), violations


def validate_frame(frame: pd.DataFrame, spec: DatasetSpec, source: str):
    """Checks a frame against the spec and converts columns to their declared types.

    Args:
        frame: Rows as loaded from the source; the index holds their source row numbers, which
            the report names (module docstring).
        spec: The data-set spec.
        source: File or generator the rows came from (named in every message).

    Returns:
        A tuple ``(typed_frame, report)``; ``typed_frame`` holds only the spec's columns and
        keeps ``frame``'s index.
    """
    report = ValidationReport(source=source, rows=len(frame))
    missing = [name for name in spec.columns if name not in frame.columns]
    if missing:
        report.errors.append(
            Violation(
                "<table>",
                "schema",
                len(missing),
                values=tuple(missing),
                detail=f"missing required column(s) {missing}",
            )
        )
        return frame, report
    if len(frame) < spec.min_rows:
        report.errors.append(
            Violation(
                "<table>",
                "row_count",
                len(frame),
                detail=f"{len(frame)} rows, fewer than the minimum {spec.min_rows}",
            )
        )
    typed, type_violations = coerce_frame(frame, spec)
    report.errors.extend(type_violations)
    for name, column in spec.columns.items():
        raw = frame[name]
        if raw.dtype == object:
            # Blank text is a missing value, not a malformed one, for every rule below.
            raw = raw.mask(raw.astype(str).str.strip() == "")
        parsed = typed[name]
        nulls = raw.isna()
        if not column.nullable and nulls.any():
            report.errors.append(_violation(name, "not_null", nulls, raw, "missing values"))
        if column.min is not None or column.max is not None:
            low = -np.inf if column.min is None else column.min
            high = np.inf if column.max is None else column.max
            numeric = parsed.astype("float64")
            out = numeric.notna() & ((numeric < low) | (numeric > high))
            if out.any():
                report.errors.append(
                    _violation(
                        name, "range", out, raw, f"values outside [{column.min}, {column.max}]"
                    )
                )
        if column.domain:
            unknown = parsed.notna() & ~parsed.isin(column.domain)
            if unknown.any():
                target = report.errors if column.strict_domain else report.warnings
                target.append(
                    _violation(
                        name, "domain", unknown, raw, f"values outside {list(column.domain)}"
                    )
                )
    ids = frame[spec.id_column]
    duplicated = ids.notna() & ids.duplicated(keep=False)
    if duplicated.any():
        report.errors.append(_violation(spec.id_column, "unique", duplicated, ids, "duplicate ids"))
    return typed, report


def enforce_spec(frame: pd.DataFrame, spec: DatasetSpec, source: str):
    """Validates and types a frame, raising when any hard rule is broken.

    Args:
        frame: Rows as loaded; the index holds their source row numbers (module docstring).
        spec: The data-set spec.
        source: Where the rows came from.

    Returns:
        A tuple ``(typed_frame, report)``; ``typed_frame`` keeps ``frame``'s index and the
        report carries the warnings.

    Raises:
        DataValidationError: One or more hard rules are broken; nothing is returned.
    """
    typed, report = validate_frame(frame, spec, source)
    if not report.ok:
        raise DataValidationError(report)
    label = spec.label_column
    typed[label] = typed[label].astype(bool)
    return typed, report
