"""Two performance patches to Great Expectations' pandas engine, applied only where written for.

They replace GX internals, so they are tied to the GX release they were written and tested
against (``TUNED_FOR``). On any other release, or when the patched names are gone, nothing is
patched and one warning says so: validation then costs more, its results are the same.
"""

from __future__ import annotations

import functools
import warnings

import pandas as pd

TUNED_FOR = "1.24."


def _only_scan_object_columns_for_decimals(original):
    @functools.wraps(original)  # keeps __wrapped__: the original stays reachable
    def convert(data: pd.Series, inplace: bool = False):
        # Only object columns can hold decimal.Decimal; GX scans every value in Python.
        if data.dtype != object:
            return None if inplace else data
        return original(data, inplace=inplace)

    convert.tuned_by_mlplatform = True
    return convert


def _skip(reason: str) -> bool:
    warnings.warn(
        f"Great Expectations performance tuning skipped: {reason}. Validations are slower; "
        "their results are unaffected.",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def tune_great_expectations() -> bool:
    """Removes two costs GX 1.24's pandas engine pays on every batch that buy us nothing.

    * The md5 fingerprint of the whole frame on every batch load (twice per validation):
      each batch is already versioned by the platform's own content hash.
    * A Python-level scan of every value for ``decimal.Decimal`` before each column mean,
      done even on float columns, which cannot hold one.

    At 1M rows x 25 columns these are over half of the validation time (see
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
        import great_expectations.execution_engine.pandas_execution_engine as engine
        import great_expectations.expectations.metrics.column_aggregate_metrics.column_mean as mean
    except ImportError as error:
        return _skip(f"a patched module is gone ({error})")
    missing = [
        name
        for module, name in (
            (engine, "HASH_THRESHOLD"),
            (mean, "convert_pandas_series_decimal_to_float_dtype"),
        )
        if not hasattr(module, name)
    ]
    if missing:
        return _skip(f"great_expectations {version} has no {', '.join(missing)}")
    engine.HASH_THRESHOLD = 0
    current = mean.convert_pandas_series_decimal_to_float_dtype
    if not getattr(current, "tuned_by_mlplatform", False):
        mean.convert_pandas_series_decimal_to_float_dtype = _only_scan_object_columns_for_decimals(
            current
        )
    return True
