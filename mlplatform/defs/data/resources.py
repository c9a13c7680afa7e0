from datetime import date

import dagster as dg
import pandas as pd
from pydantic import Field

from mlplatform.datasets.loading import DATE_PLACEHOLDER, load_partition, resolve_source_path
from mlplatform.datasets.spec import DatasetSpec, load_spec
from mlplatform.datasets.synthetic import DriftConfig
from mlplatform.paths import PROJECT_ROOT, resolve_in_project


class DatasetResource(dg.ConfigurableResource):
    """The configured data set: its spec, its source and the platform's local state directory."""

    name: str = Field(
        default="synthetic_churn",
        description="Shipped spec name (synthetic_churn, telco) or a path to a spec YAML file.",
    )
    data_path: str = Field(
        default="", description="Source file for file-backed data sets; empty = the spec's path."
    )
    home_dir: str = Field(
        default=".mlplatform",
        description="Platform state (holdout snapshots); relative paths are under the repo root.",
    )
    holdout_fraction: float = Field(default=0.2, description="Share of rows frozen as holdout.")

    def spec(self) -> DatasetSpec:
        return load_spec(self.name)

    def load_partition(
        self, partition_key: str, drift: DriftConfig | None = None
    ) -> tuple[pd.DataFrame, str]:
        """The rows of one daily partition and the file or generator they came from."""
        day = date.fromisoformat(partition_key)
        return load_partition(self.spec(), PROJECT_ROOT, self.data_path or None, day, drift)

    def source_description(self, partition_key: str | None = None) -> str:
        """Where rows come from, for messages: the file (of that partition) or the generator."""
        spec = self.spec()
        if spec.source.get("kind") == "synthetic":
            where = f"synthetic generator ({spec.name})"
        else:
            where = str(resolve_source_path(spec, PROJECT_ROOT, self.data_path or None))
            if partition_key and DATE_PLACEHOLDER in where:
                where = where.replace(DATE_PLACEHOLDER, partition_key)
        return f"{where} [partition {partition_key}]" if partition_key else where

    def state_dir(self, *parts: str):
        return resolve_in_project(self.home_dir).joinpath(self.spec().name, *parts)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "dataset": DatasetResource(
                name=dg.EnvVar("MLPLATFORM_DATASET"),
                data_path=dg.EnvVar("MLPLATFORM_DATA_PATH"),
                home_dir=dg.EnvVar("MLPLATFORM_HOME"),
            )
        }
    )
