import dagster as dg
from pydantic import Field


def _parse_threshold(field: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"gate setting {field}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"gate setting {field}={value} is outside [{low}, {high}]")
    return value


class GatePolicy(dg.ConfigurableResource):
    """Thresholds of the model gates (strings so they can come from environment variables)."""

    min_auc: str = Field(
        default="0.80", description="The holdout AUC's lower 95% bound must clear this."
    )
    min_delta: str = Field(
        default="0.005",
        description="The challenger must beat the champion by this (lower bound of the paired CI).",
    )

    min_slice_auc: float = Field(
        default=0.74,
        description="Slice AUC threshold, tested across slices with a Holm correction.",
    )
    min_slice_rows: int = Field(default=30, description="Smaller slices are skipped, not failed.")
    max_calibration_error: float = Field(
        default=0.05, description="Expected calibration error above this is a warning."
    )

    @property
    def min_auc_value(self) -> float:
        return _parse_threshold("MLPLATFORM_MIN_AUC", self.min_auc, 0.5, 1.0)

    @property
    def min_delta_value(self) -> float:
        return _parse_threshold("MLPLATFORM_MIN_DELTA", self.min_delta, 0.0, 0.5)

    def check_thresholds(self) -> None:
        """Raises ValueError naming the first threshold setting that is not a valid number."""
        _ = (self.min_auc_value, self.min_delta_value)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "gates": GatePolicy(
                min_auc=dg.EnvVar("MLPLATFORM_MIN_AUC"),
                min_delta=dg.EnvVar("MLPLATFORM_MIN_DELTA"),
            )
        }
    )
