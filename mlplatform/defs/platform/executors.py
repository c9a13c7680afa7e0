import os

import dagster as dg

EXECUTOR_VARIABLE = "MLPLATFORM_EXECUTOR"


@dg.definitions
def executor() -> dg.Definitions:
    # Read when the code location loads: the executor is part of the definitions.
    choice = os.environ.get(EXECUTOR_VARIABLE) or "in_process"
    if choice == "in_process":
        # The graph is a chain, so a process per step would only add start-up time.
        return dg.Definitions(executor=dg.in_process_executor)
    if choice == "k8s_job":
        # Each step its own Kubernetes Job (resources per step, e.g. a big node for training).
        from dagster_k8s import k8s_job_executor

        return dg.Definitions(executor=k8s_job_executor)
    raise ValueError(f"{EXECUTOR_VARIABLE}={choice!r}: use 'in_process' or 'k8s_job'")
