"""The types of a data-set specification: columns, model features, behaviours, the data set.

Plain frozen data; ``mlplatform.datasets.spec`` reads them from YAML and checks every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COLUMN_TYPES = ("string", "integer", "float", "boolean", "category", "date")


class SpecError(ValueError):
    """A data-set spec is malformed; the message names the spec file and field."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a data set.

    Attributes:
        name: Column name after the source mapping.
        type: One of COLUMN_TYPES.
        nullable: Whether missing values are allowed.
        min: Inclusive lower bound for numeric columns.
        max: Inclusive upper bound for numeric columns.
        domain: Allowed values for a category column.
        strict_domain: When False, unseen categories pass validation (the model maps them to
            "unknown"); when True they fail it.
        max_null_fraction: For nullable columns, the largest tolerated share of missing values
            (GX ``mostly`` = 1 - this); 0.99 by default, so an all-empty column fails.
        mean_range: Optional (low, high) bounds on the column mean of a batch (a soft check).
    """

    name: str
    type: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    domain: tuple[str, ...] = ()
    strict_domain: bool = True
    max_null_fraction: float = 1.0
    mean_range: tuple[float, float] | None = None


BEHAVIOUR_EXPECTATIONS = ("decrease", "increase", "unchanged")


@dataclass(frozen=True)
class BehaviourSpec:
    """A directional expectation: changing one input should move the prediction one way.

    Attributes:
        name: Identifier shown in reports.
        column: Column that is changed.
        from_value: The value of the rows that are tested (None or "*": every row).
        to_value: The value those rows are changed to.
        expect: "decrease", "increase" or "unchanged" (the prediction moves by at most 0.01).
        min_fraction: Fraction of rows for which the expectation must hold.
    """

    name: str
    column: str
    from_value: Any
    to_value: Any
    expect: str
    min_fraction: float = 0.9


@dataclass(frozen=True)
class FeatureSpec:
    """How raw columns become model inputs.

    Attributes:
        numeric: Numeric columns used as they are (missing values are imputed).
        categorical: Columns one-hot encoded (unknown categories ignored).
        boolean: 0/1 columns.
        cyclical: Column -> period, encoded as sin/cos.
        frequency: Columns replaced by their training-set frequency.
        days_since: Date columns turned into days before the training reference date.
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()
    cyclical: dict[str, float] = field(default_factory=dict)
    frequency: tuple[str, ...] = ()
    days_since: tuple[str, ...] = ()

    @property
    def input_columns(self) -> tuple[str, ...]:
        """All raw columns the model reads, in a stable order."""
        ordered = [
            *self.numeric,
            *self.categorical,
            *self.boolean,
            *self.cyclical,
            *self.frequency,
            *self.days_since,
        ]
        return tuple(dict.fromkeys(ordered))


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the platform needs to know about one data set.

    Attributes:
        name: Data-set name (also used in the registered model name).
        source: Loader settings, e.g. {"kind": "synthetic", ...} or {"kind": "telco_csv", ...}.
        id_column: Unique row identifier.
        label_column: Binary label (1 = positive class).
        time_column: Optional event-time column.
        columns: Column specs by name.
        features: Model input recipe.
        slices: Columns whose groups get their own metrics.
        behaviours: Directional expectations for model tests.
        min_rows: Fewest rows a daily partition may have.
        max_rows: Most rows a daily partition may have (catches duplicated deliveries).
        label_rate: (low, high) bounds on the positive-label share of a partition.
        training_window_days: Default length of the rolling training window.
    """

    name: str
    source: dict[str, Any]
    id_column: str
    label_column: str
    time_column: str | None
    columns: dict[str, ColumnSpec]
    features: FeatureSpec
    slices: tuple[str, ...] = ()
    behaviours: tuple[BehaviourSpec, ...] = ()
    min_rows: int = 100
    max_rows: int = 10_000_000
    label_rate: tuple[float, float] = (0.01, 0.99)
    training_window_days: int = 30

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns every batch must contain."""
        return tuple(self.columns)
