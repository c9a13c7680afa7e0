"""Data-set specs: the shipped ones load, and a malformed one names its file and field."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.datasets.spec import SPEC_DIR, SpecError, available_specs, load_spec, parse_spec


def base_raw() -> dict:
    return yaml.safe_load((SPEC_DIR / "synthetic_churn.yaml").read_text())


@pytest.mark.parametrize("name", ["synthetic_churn", "telco"])
def test_shipped_spec_loads_by_name_and_path_with_all_columns_declared(name):
    spec = load_spec(name)
    assert name in available_specs() == ["synthetic_churn", "telco"]
    assert load_spec(str(SPEC_DIR / f"{name}.yaml")) == spec
    assert {spec.id_column, spec.label_column} <= set(spec.columns)
    assert set(spec.features.input_columns) <= set(spec.columns)
    assert spec.required_columns == tuple(spec.columns)


DROP = object()
CYCLICAL = ["features", "cyclical", "last_login_hour"]
NOT_DECLARED = ": column 'ghost' is not declared in columns"


def _mutated(path, value):
    raw = base_raw()
    target = raw
    for key in path[:-1]:
        target = target[key]
    if value is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


TENURE_TYPE = ["columns", "tenure_months", "type"]
NO_DOMAIN = ".columns.region: a category column needs a 'domain'"
NO_EXPECT = ".behaviours: missing required field 'expect'"
MALFORMED = {  # id -> (field path, new value, message suffix after the file name)
    "no-id": (["id_column"], DROP, ": missing required field 'id_column'"),
    "bad-type": (TENURE_TYPE, "decimal", ".columns.tenure_months.type: 'decimal'"),
    "no-domain": (["columns", "region"], {"type": "category"}, NO_DOMAIN),
    "feature": (["features", "boolean"], ["ghost"], ".features" + NOT_DECLARED),
    "slice": (["slices"], ["region", "ghost"], ".slices" + NOT_DECLARED),
    "behaviour": (["behaviours", 0, "column"], "ghost", ".behaviours" + NOT_DECLARED),
    "no-expect": (["behaviours", 0, "expect"], DROP, NO_EXPECT),
    "zero-period": (CYCLICAL, 0, ".features.cyclical.last_login_hour: period must"),
    "negative-period": (CYCLICAL, -24, ".features.cyclical.last_login_hour: period"),
}


@pytest.mark.parametrize(("path", "value", "suffix"), MALFORMED.values(), ids=MALFORMED)
def test_malformed_spec_raises_spec_error_naming_file_and_field(path, value, suffix, tmp_path):
    spec_file = tmp_path / "broken.yaml"
    spec_file.write_text(yaml.safe_dump(_mutated(path, value)))
    with pytest.raises(SpecError) as info:
        load_spec(str(spec_file))
    assert f"{spec_file}{suffix}" in str(info.value)


@given(period=st.floats(max_value=0, allow_nan=False))
def test_any_non_positive_cyclical_period_is_rejected(period):
    with pytest.raises(SpecError, match="period must be positive"):
        parse_spec(_mutated(CYCLICAL, period))


@pytest.mark.parametrize(
    ("path", "value"),
    [(["columns"], ["customer_id"]), (CYCLICAL, "daily"), (CYCLICAL, float("nan"))]
    + [(["min_rows"], "many")],
    ids=["columns-as-list", "period-not-a-number", "period-nan", "min_rows-not-int"],
)
def test_wrongly_typed_field_raises_spec_error(path, value):
    with pytest.raises(SpecError):
        parse_spec(_mutated(path, value), "x.yaml")


def test_unknown_data_set_name_lists_the_shipped_ones():
    with pytest.raises(SpecError) as info:
        load_spec("no_such_data")
    assert "'no_such_data'" in str(info.value)
    for name in available_specs():
        assert name in str(info.value)


@pytest.mark.parametrize("content", ["- just\n- a list\n", "key: [unclosed\n"])
def test_spec_file_that_is_not_a_yaml_mapping_raises_spec_error(content, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SpecError, match="bad.yaml"):
        load_spec(str(path))
