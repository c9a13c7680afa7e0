import pickle
import uuid
from typing import Any

import dagster as dg
from pydantic import Field
from upath import UPath

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.window import StoredPartitions


class _PartitionAwarePickleIOManager(dg.UPathIOManager):
    """Pickles asset values under a base directory, one file per asset or partition.

    When an unpartitioned asset reads a daily-partitioned one, it gets a lazy
    ``StoredPartitions`` of the partitions that exist instead of every partition loaded at
    once, so the consumer decides which days to read (the training window).
    """

    extension = ".pkl"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        # A name of its own per writer: two runs of the same day never share a temporary file.
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        with tmp.open("wb") as file:
            pickle.dump(obj, file, pickle.HIGHEST_PROTOCOL)
        # Rename into place: a crash mid-write never leaves a half-written partition.
        tmp.rename(path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        with path.open("rb") as file:
            return pickle.load(file)

    def load_input(self, context: dg.InputContext) -> Any:
        # The consuming asset's own partitioning, not the run's: in a run for one day of the
        # whole graph, the unpartitioned features asset still reads the stored days lazily.
        downstream_partitioned = context.step_context.entity_partitions_def is not None
        if context.has_asset_partitions and not downstream_partitioned:
            paths = self._get_paths_for_partitions(context)
            existing = {key: path for key, path in paths.items() if path.exists()}
            return StoredPartitions(existing, lambda path: self.load_from_path(context, path))
        return super().load_input(context)


class PartitionAwareIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values under ``<base_dir>/<data set>/<asset>/<partition>.pkl``.

    Each data set has its own directory, so switching ``MLPLATFORM_DATASET`` never feeds one
    data set's days to another's training. ``base_dir`` may be any fsspec URL (a shared volume
    or an object store) so that every run pod of a Kubernetes deployment sees the same days.
    """

    dataset: str = Field(description="Data-set spec name or path (names the directory).")
    base_dir: str = Field(
        default="", description="Storage root (path or fsspec URL); empty = instance storage."
    )

    def create_io_manager(self, context: dg.InitResourceContext) -> _PartitionAwarePickleIOManager:
        base = self.base_dir or context.instance.storage_directory()
        return _PartitionAwarePickleIOManager(base_path=UPath(base) / load_spec(self.dataset).name)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "io_manager": PartitionAwareIOManager(
                dataset=dg.EnvVar("MLPLATFORM_DATASET"),
                base_dir=dg.EnvVar("MLPLATFORM_STORAGE"),
            )
        }
    )
