"""Performance patches to Great Expectations, applied only to the release they were written for.

They replace GX internals, so they are tied to the GX release they were written and tested
against (``TUNED_FOR``). On any other release, or when a patched name is gone, nothing is
patched and one warning says so: validation then costs more, its results are the same.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

TUNED_FOR = "1.24."
_MARK = "tuned_by_mlplatform"


def _only_scan_object_columns_for_decimals(original):
    @functools.wraps(original)  # keeps __wrapped__: the original stays reachable
    def convert(data: pd.Series, inplace: bool = False):
        # Only object columns can hold decimal.Decimal; GX scans every value in Python.
        if data.dtype != object:
            return None if inplace else data
        return original(data, inplace=inplace)

    return convert


def _memoised(original):
    # A pure function of a class name, run by a regex on every ``Expectation.configuration``.
    return functools.wraps(original)(functools.lru_cache(maxsize=1024)(original))


def _field_value(expectation, key: str, default: Any) -> Any:
    """What GX 1.24's kwarg getters return for a key absent from the configuration."""
    field = expectation.__fields__.get(key)
    if field is not None:
        return field.default if not field.required else default
    return None


def _kwarg_getters(expectation_class) -> dict[str, Callable]:
    """GX 1.24's ``Expectation`` kwarg getters, building ``configuration`` once per call.

    Each original reads ``self.configuration`` (a pydantic ``dict()`` and a new
    ``ExpectationConfiguration``) once per key, a dozen times per expectation and metric.
    """
    originals = {
        name: getattr(expectation_class, name)
        for name in (
            "_get_success_kwarg",
            "_get_domain_kwargs",
            "_get_success_kwargs",
            "_get_runtime_kwargs",
        )
    }
    from great_expectations.expectations.expectation import parse_result_format

    def success_kwarg(self, key, default=None, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        if key in kwargs:
            return kwargs[key]
        if key in self.__fields__:
            return _field_value(self, key, default)
        return originals["_get_success_kwarg"](self, key, default)  # logs the unknown key

    def domain_kwargs(self, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        return {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}

    def success_kwargs(self, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        found = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
        found.update(domain_kwargs(self, kwargs))
        return found

    def runtime_kwargs(self, runtime_configuration=None):
        runtime_configuration = runtime_configuration or {}
        kwargs = self.configuration.kwargs
        found = {
            key: runtime_configuration.get(key, success_kwarg(self, key, None, kwargs))
            for key in self.runtime_keys
        }
        found.update(success_kwargs(self, kwargs))
        found["result_format"] = parse_result_format(found["result_format"])
        return found

    replacements = {
        "_get_success_kwarg": success_kwarg,
        "_get_domain_kwargs": domain_kwargs,
        "_get_success_kwargs": success_kwargs,
        "_get_runtime_kwargs": runtime_kwargs,
    }
    return {
        name: functools.wraps(originals[name])(replacement)
        for name, replacement in replacements.items()
    }


def _is_plain_json(value: Any) -> bool:
    """Whether ``json.dumps`` writes the value exactly as after GX's JSON conversion."""
    kind = type(value)
    if kind in (str, int, bool) or value is None:
        return True
    if kind is float:
        return not math.isnan(value)  # GX writes NaN as null
    if kind in (list, tuple):
        return all(_is_plain_json(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _is_plain_json(item) for key, item in value.items())
    return False


def _plain_json_ids(original):
    @functools.wraps(original)
    def to_id(self, id_keys=None, id_ignore_keys=None):
        keys = set(self.keys() if id_keys is None else id_keys) - set(
            self._id_ignore_keys if id_ignore_keys is None else id_ignore_keys
        )
        if len(keys) < 2 or not all(type(k) is str and _is_plain_json(self[k]) for k in keys):
            return original(self, id_keys, id_ignore_keys)
        # GX's own digest, minus a type-dispatching conversion that changes nothing here.
        text = json.dumps({key: self[key] for key in keys}, sort_keys=True)
        return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    return to_id


def _skip(reason: str) -> bool:
    warnings.warn(
        f"Great Expectations performance tuning skipped: {reason}. Validations are slower; "
        "their results are unaffected.",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replaces ``owner.name`` by ``make(original)`` unless that was done already."""
    current = getattr(owner, name)
    if not getattr(current, _MARK, False):
        replacement = make(current)
        setattr(replacement, _MARK, True)
        setattr(owner, name, replacement)


def tune_great_expectations() -> bool:
    """Removes costs GX 1.24's pandas engine pays on every batch that buy us nothing.

    * The md5 fingerprint of the whole frame on every batch load (twice per validation):
      each batch is already versioned by the platform's own content hash.
    * A Python-level scan of every value for ``decimal.Decimal`` before each column mean,
      done even on float columns, which cannot hold one.
    * Per-call bookkeeping, a large share of a validation on a narrow batch: an expectation's
      configuration rebuilt once per kwarg read (and its type name by a regex each time), and
      every metric id converted value by value to JSON although its kwargs already are JSON.

    At 1M rows x 25 columns these are most of the validation time (see
    ``benchmarks/data_validation.py``); the results are identical, as the tests check.

    Returns:
        Whether the patches are in place. When the installed GX is not a ``TUNED_FOR`` release
        or lacks a patched name, nothing is changed and a ``RuntimeWarning`` says so.
    """
    import great_expectations as gx

    version = str(getattr(gx, "__version__", "unknown"))
    if not version.startswith(TUNED_FOR):
        return _skip(f"written for great_expectations {TUNED_FOR}x, found {version}")
    try:
        import great_expectations.core.id_dict as id_dict
        import great_expectations.execution_engine.pandas_execution_engine as engine
        import great_expectations.expectations.expectation as expectation
        import great_expectations.expectations.metrics.column_aggregate_metrics.column_mean as mean
    except ImportError as error:
        return _skip(f"a patched module is gone ({error})")
    getters = ("_get_success_kwarg", "_get_domain_kwargs", "_get_success_kwargs")
    expectation_class = getattr(expectation, "Expectation", None)
    missing = [
        name
        for owner, name in (
            (engine, "HASH_THRESHOLD"),
            (mean, "convert_pandas_series_decimal_to_float_dtype"),
            (expectation, "camel_to_snake"),
            (expectation, "parse_result_format"),
            (getattr(id_dict, "IDDict", None), "to_id"),
            *((expectation_class, name) for name in (*getters, "_get_runtime_kwargs")),
        )
        if not hasattr(owner, name)
    ]
    if missing:
        return _skip(f"great_expectations {version} has no {', '.join(missing)}")
    engine.HASH_THRESHOLD = 0
    _patch(
        mean, "convert_pandas_series_decimal_to_float_dtype", _only_scan_object_columns_for_decimals
    )
    _patch(expectation, "camel_to_snake", _memoised)
    # The four getters call each other: they are replaced together or not at all.
    if not getattr(expectation_class._get_runtime_kwargs, _MARK, False):
        for name, getter in _kwarg_getters(expectation_class).items():
            _patch(expectation_class, name, lambda _, getter=getter: getter)
    _patch(id_dict.IDDict, "to_id", _plain_json_ids)
    return True
