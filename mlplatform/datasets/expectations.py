"""The data tests of a data set, derived from its spec, grouped the way the asset checks are.

Each rule is one Great Expectations 1.x expectation (class name and keyword arguments); this
module only describes them, so importing it does not import Great Expectations (about 1.5 s),
which keeps the code location fast to load for the UI and the sensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplatform.datasets.spec import DatasetSpec

# Check groups; hard rules block everything downstream.
SCHEMA = "schema"
COMPLETENESS = "completeness"
RANGES = "ranges"
CATEGORIES = "categories"
UNIQUE_IDS = "unique_ids"
ROW_COUNT = "row_count"
LABEL_BALANCE = "label_balance"
# Soft groups: reported as warnings.
UNSEEN_CATEGORIES = "unseen_categories"
DISTRIBUTION = "distribution"

GROUP_DESCRIPTIONS = {
    SCHEMA: "Every spec column is present and its values parse as the declared type.",
    COMPLETENESS: "Ids, the label and other required columns have no missing values; "
    "nullable columns stay under their missing-value share.",
    RANGES: "Numeric values lie within the spec's bounds.",
    CATEGORIES: "Category values belong to their (strict) domains.",
    UNIQUE_IDS: "Each id occurs once in the day's batch.",
    ROW_COUNT: "The day's batch has a plausible number of rows.",
    UNSEEN_CATEGORIES: "Values outside a non-strict domain (the model treats them as unknown).",
    DISTRIBUTION: "Column means lie in their expected ranges (shifts are worth a look).",
    LABEL_BALANCE: "The positive-label share lies in its expected range.",
}
HARD_GROUPS = (SCHEMA, COMPLETENESS, RANGES, CATEGORIES, UNIQUE_IDS, ROW_COUNT, LABEL_BALANCE)
# Evaluated inside raw_data, before anything is stored: a day that breaks a hard rule is never
# stored, so the last good version stays the one every reader sees.
RAW_GROUPS = (
    SCHEMA,
    COMPLETENESS,
    RANGES,
    CATEGORIES,
    UNIQUE_IDS,
    ROW_COUNT,
    LABEL_BALANCE,
    UNSEEN_CATEGORIES,
)
VALIDATED_GROUPS = (DISTRIBUTION,)


@dataclass(frozen=True)
class Rule:
    """One expectation of the suite.

    Attributes:
        group: The asset check it reports under.
        expectation: Great Expectations class name, e.g. ``ExpectColumnValuesToNotBeNull``.
        kwargs: Its arguments (column, bounds, value set, ``mostly``...).
    """

    group: str
    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def hard(self) -> bool:
        """Whether a failure blocks downstream assets."""
        return self.group in HARD_GROUPS

    @property
    def column(self) -> str | None:
        """The column the rule is about, if any."""
        return self.kwargs.get("column")

    def describe(self) -> str:
        """E.g. 'ExpectColumnValuesToBeBetween(column=tenure_months, min_value=0, max_value=240)'."""
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.expectation}({args})"


def suite_rules(spec: DatasetSpec) -> list[Rule]:
    """All expectations the spec implies, for a day's batch converted to the spec's types.

    Types themselves are checked while converting (see ``validation.coerce_frame``): a value
    that does not parse is reported under ``schema`` with its row.

    Args:
        spec: The data-set spec.

    Returns:
        The rules, in a stable order.
    """
    rules = [
        Rule(
            SCHEMA,
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(spec.columns), "exact_match": False},
        ),
        Rule(
            ROW_COUNT,
            "ExpectTableRowCountToBeBetween",
            {"min_value": spec.min_rows, "max_value": spec.max_rows},
        ),
        Rule(UNIQUE_IDS, "ExpectColumnValuesToBeUnique", {"column": spec.id_column}),
    ]
    for name, column in spec.columns.items():
        if not column.nullable:
            rules.append(Rule(COMPLETENESS, "ExpectColumnValuesToNotBeNull", {"column": name}))
        elif column.max_null_fraction < 1.0:
            mostly = round(1.0 - column.max_null_fraction, 6)
            rules.append(
                Rule(
                    COMPLETENESS,
                    "ExpectColumnValuesToNotBeNull",
                    {"column": name, "mostly": mostly},
                )
            )
        if column.type in ("integer", "float") and (
            column.min is not None or column.max is not None
        ):
            rules.append(
                Rule(
                    RANGES,
                    "ExpectColumnValuesToBeBetween",
                    {"column": name, "min_value": column.min, "max_value": column.max},
                )
            )
        if column.type == "category":
            group = CATEGORIES if column.strict_domain else UNSEEN_CATEGORIES
            rules.append(
                Rule(
                    group,
                    "ExpectColumnValuesToBeInSet",
                    {"column": name, "value_set": list(column.domain)},
                )
            )
        if column.mean_range is not None:
            low, high = column.mean_range
            rules.append(
                Rule(
                    DISTRIBUTION,
                    "ExpectColumnMeanToBeBetween",
                    {"column": name, "min_value": low, "max_value": high},
                )
            )
    low, high = spec.label_rate
    rules.append(
        Rule(
            LABEL_BALANCE,
            "ExpectColumnMeanToBeBetween",
            {"column": spec.label_column, "min_value": low, "max_value": high},
        )
    )
    return rules
