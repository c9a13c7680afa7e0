"""Data-set specifications: what a table must look like and how the platform should treat it.

A spec is plain data (loaded from YAML, its types in ``spec_types``) so that nothing in the
pipeline is hard-wired to one table. Parsing checks every field and names it when it is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from mlplatform.datasets.spec_types import (
    BEHAVIOUR_EXPECTATIONS,
    COLUMN_TYPES,
    BehaviourSpec,
    ColumnSpec,
    DatasetSpec,
    FeatureSpec,
    SpecError,
)

__all__ = [
    "COLUMN_TYPES",
    "SPEC_DIR",
    "BehaviourSpec",
    "ColumnSpec",
    "DatasetSpec",
    "FeatureSpec",
    "SpecError",
    "available_specs",
    "load_spec",
    "parse_spec",
]

SPEC_DIR = Path(__file__).parent / "specs"


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
