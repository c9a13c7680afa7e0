"""A code location holding only psi_drift_sensor, for driving the sensor daemon in a test.

``retrain_job`` is a stand-in with the real job's name: the test is about which runs the daemon
creates, not what they do (its instance's run launcher never starts them).
"""

import dagster as dg

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.monitoring.sensors import psi_drift_sensor
from mlplatform.defs.training.resources import MLflowResource


@dg.op
def retrain_stand_in() -> None:
    """Stands in for the retrain."""


@dg.job(name="retrain_job")
def retrain_job():
    retrain_stand_in()


defs = dg.Definitions(
    sensors=[psi_drift_sensor],
    jobs=[retrain_job],
    resources={
        "dataset": DatasetResource(
            name=dg.EnvVar("MLPLATFORM_DATASET"),
            data_path=dg.EnvVar("MLPLATFORM_DATA_PATH"),
            home_dir=dg.EnvVar("MLPLATFORM_HOME"),
        ),
        "mlflow_tracking": MLflowResource(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
            artifact_root=dg.EnvVar("MLFLOW_ARTIFACT_ROOT"),
        ),
        "drift": DriftPolicy(),
    },
)
