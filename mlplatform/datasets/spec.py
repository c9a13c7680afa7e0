"""Data-set specifications: what a table must look like and how the platform should treat it.

A spec is plain data (loaded from YAML) so that nothing in the pipeline is hard-wired to one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).parent / "specs"
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


def _require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise SpecError(f"{where}: missing required field '{key}'")
    return raw[key]


def _require_list(value: Any, where: str) -> None:
    if not isinstance(value, list | tuple):
        raise SpecError(f"{where}: must be a list of column names, got {value!r}")


def _number(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: {value!r} is not a number") from None


def _column(name: str, raw: dict[str, Any], where: str) -> ColumnSpec:
    col_type = _require(raw, "type", f"{where}.columns.{name}")
    if col_type not in COLUMN_TYPES:
        raise SpecError(
            f"{where}.columns.{name}.type: '{col_type}' is not one of {', '.join(COLUMN_TYPES)}"
        )
    domain = tuple(str(v) for v in raw.get("domain", ()))
    if col_type == "category" and not domain:
        raise SpecError(f"{where}.columns.{name}: a category column needs a 'domain'")
    return ColumnSpec(
        name=name,
        type=col_type,
        nullable=bool(raw.get("nullable", False)),
        min=raw.get("min"),
        max=raw.get("max"),
        domain=domain,
        strict_domain=bool(raw.get("strict_domain", True)),
        # A nullable column that is entirely empty is still a broken delivery.
        max_null_fraction=_fraction(raw.get("max_null_fraction", 0.99), f"{where}.columns.{name}"),
        mean_range=_bounds(raw.get("mean"), f"{where}.columns.{name}.mean"),
    )


def _expectation(value: Any, where: str) -> str:
    if value not in BEHAVIOUR_EXPECTATIONS:
        raise SpecError(
            f"{where}.behaviours.expect: {value!r} is not one of "
            f"{', '.join(BEHAVIOUR_EXPECTATIONS)}"
        )
    return value


def _fraction(value: Any, where: str) -> float:
    number = _number(value, f"{where}.max_null_fraction")
    if not 0.0 <= number <= 1.0:
        raise SpecError(f"{where}.max_null_fraction: {number} is not in [0, 1]")
    return number


def _bounds(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SpecError(f"{where}: expected [low, high], got {value!r}")
    low, high = _number(value[0], where), _number(value[1], where)
    if low > high:
        raise SpecError(f"{where}: low {low} is above high {high}")
    return low, high


def parse_spec(raw: dict[str, Any], where: str = "<spec>") -> DatasetSpec:
    """Builds a DatasetSpec from its dictionary form, checking cross-references.

    Args:
        raw: The parsed YAML document.
        where: Name of the origin (file path) used in error messages.

    Returns:
        The validated spec.

    Raises:
        SpecError: A field is missing, has the wrong type, or names an unknown column.
    """
    raw_columns = _require(raw, "columns", where)
    if not isinstance(raw_columns, dict):
        raise SpecError(f"{where}.columns: must be a mapping of column name to its spec")
    columns = {name: _column(name, col or {}, where) for name, col in raw_columns.items()}
    feats = raw.get("features", {}) or {}
    if not isinstance(feats, dict):
        raise SpecError(f"{where}.features: must be a mapping")
    for key in ("numeric", "categorical", "boolean", "frequency", "days_since"):
        _require_list(feats.get(key, []), f"{where}.features.{key}")
    _require_list(raw.get("slices", []), f"{where}.slices")
    features = FeatureSpec(
        numeric=tuple(feats.get("numeric", ())),
        categorical=tuple(feats.get("categorical", ())),
        boolean=tuple(feats.get("boolean", ())),
        cyclical={
            k: _number(v, f"{where}.features.cyclical.{k}")
            for k, v in (feats.get("cyclical") or {}).items()
        },
        frequency=tuple(feats.get("frequency", ())),
        days_since=tuple(feats.get("days_since", ())),
    )
    behaviours = tuple(
        BehaviourSpec(
            name=_require(b, "name", f"{where}.behaviours"),
            column=_require(b, "column", f"{where}.behaviours"),
            from_value=_require(b, "from", f"{where}.behaviours"),
            to_value=_require(b, "to", f"{where}.behaviours"),
            expect=_expectation(_require(b, "expect", f"{where}.behaviours"), where),
            min_fraction=float(b.get("min_fraction", 0.9)),
        )
        for b in raw.get("behaviours", ()) or ()
    )
    spec = DatasetSpec(
        name=_require(raw, "name", where),
        source=dict(_require(raw, "source", where)),
        id_column=_require(raw, "id_column", where),
        label_column=_require(raw, "label_column", where),
        time_column=raw.get("time_column"),
        columns=columns,
        features=features,
        slices=tuple(raw.get("slices", ())),
        behaviours=behaviours,
        min_rows=int(_number(raw.get("min_rows", 100), f"{where}.min_rows")),
        max_rows=int(_number(raw.get("max_rows", 10_000_000), f"{where}.max_rows")),
        label_rate=_bounds(raw.get("label_rate", [0.01, 0.99]), f"{where}.label_rate"),
        training_window_days=int(
            _number(raw.get("training_window_days", 30), f"{where}.training_window_days")
        ),
    )
    referenced = {
        "id_column": [spec.id_column],
        "label_column": [spec.label_column],
        "time_column": [spec.time_column] if spec.time_column else [],
        "features": list(features.input_columns),
        "slices": list(spec.slices),
        "behaviours": [b.column for b in behaviours],
    }
    for field_name, names in referenced.items():
        for name in names:
            if name not in columns:
                raise SpecError(f"{where}.{field_name}: column '{name}' is not declared in columns")
    for name, period in features.cyclical.items():
        if not (math.isfinite(period) and period > 0):
            raise SpecError(f"{where}.features.cyclical.{name}: period must be positive")
    return spec


def available_specs() -> list[str]:
    """Names of the data-set specs shipped with the package."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def load_spec(name_or_path: str) -> DatasetSpec:
    """Loads a shipped spec by name, or any spec from a YAML file path.

    Args:
        name_or_path: A shipped spec name such as "synthetic_churn", or a path to a YAML file.

    Returns:
        The parsed spec.

    Raises:
        SpecError: Unknown name, unreadable file, or malformed spec.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SPEC_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpecError(
                f"unknown data set '{name_or_path}'; shipped: {', '.join(available_specs())}, "
                "or pass a path to a spec YAML file"
            )
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping")
    return parse_spec(raw, where=str(path))
