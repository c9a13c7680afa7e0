"""The Dagster code location: everything under mlplatform/defs, run in one process per run."""

from pathlib import Path

import dagster as dg

# The graph is a chain, so a process per step would only add start-up time.
defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(executor=dg.in_process_executor),
)
