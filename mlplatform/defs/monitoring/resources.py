import dagster as dg
from pydantic import Field


class DriftPolicy(dg.ConfigurableResource):
    """When the drift sensor asks for a retrain."""

    psi_threshold: float = Field(default=0.2, description="PSI above this on any feature fires.")
    watch_threshold: float = Field(default=0.1, description="PSI above this is reported as watch.")
    min_rows: int = Field(default=500, description="Smaller samples are too noisy to act on.")
    cooldown_hours: float = Field(
        default=24.0, description="After a drift retrain, no other one for this long."
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"drift": DriftPolicy()})
