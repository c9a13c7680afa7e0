import os

import dagster as dg
from pydantic import Field

from mlplatform.deployment.approvals import parse_approvers

MAX_STEP_VARIABLE = "MLPLATFORM_CANARY_MAX_STEP_SECONDS"


class DeploymentPolicy(dg.ConfigurableResource):
    """Who may approve a deploy, and how a model reaches traffic."""

    approvers: str = Field(
        default="", description="Comma-separated names allowed to approve or reject a version."
    )
    require_approval: str = Field(
        default="true",
        description="'true': a version deploys only with a recorded approval; 'false' skips it "
        "(a test or staging setup, never production).",
    )
    serving_url: str = Field(
        default="",
        description="Base URL of `mlplatform serve` (e.g. http://127.0.0.1:8080). Set: a "
        "promotion starts a canary watched through its /metrics; empty: no serving process, "
        "promote directly.",
    )

    canary_min_requests: str = Field(
        default="200", description="Canary requests each step (5%, 25%, 100%) needs at least."
    )
    canary_min_dwell_seconds: str = Field(
        default="60", description="Seconds each canary step lasts at least."
    )
    canary_max_step_seconds: str = Field(
        default="3600",
        description="Seconds after which a canary step without its minimum requests is rolled "
        "back ('no traffic'): a canary nobody uses is never promoted.",
    )

    def canary_plan(self):
        """The release plan, from settings that may come from environment variables."""
        from mlplatform.deployment.canary_plan import CanaryPlan

        try:
            requests, dwell = int(self.canary_min_requests), float(self.canary_min_dwell_seconds)
            longest = float(self.canary_max_step_seconds)
        except ValueError as exc:
            raise ValueError(
                f"canary settings MLPLATFORM_CANARY_MIN_REQUESTS={self.canary_min_requests!r}, "
                f"MLPLATFORM_CANARY_MIN_DWELL_SECONDS={self.canary_min_dwell_seconds!r}, "
                f"{MAX_STEP_VARIABLE}={self.canary_max_step_seconds!r}: {exc}"
            ) from exc
        if requests < 1 or dwell < 0:
            raise ValueError(f"canary settings out of range: {requests} requests, {dwell} s")
        if not longest > dwell:
            raise ValueError(
                f"{MAX_STEP_VARIABLE}={longest:g} must exceed MLPLATFORM_CANARY_MIN_DWELL_SECONDS"
                f"={dwell:g}: otherwise no canary step could ever pass"
            )
        return CanaryPlan(min_requests=requests, min_dwell_seconds=dwell, max_step_seconds=longest)

    @property
    def approver_names(self) -> tuple[str, ...]:
        return parse_approvers(self.approvers)

    @property
    def approval_required(self) -> bool:
        value = self.require_approval.strip().lower()
        if value not in ("true", "false"):
            raise ValueError(
                f"MLPLATFORM_REQUIRE_APPROVAL={self.require_approval!r}: use true/false"
            )
        return value == "true"


@dg.definitions
def resources() -> dg.Definitions:
    # Optional setting, read when the code location loads (like the retrain cron): unset, the
    # field's default applies, so existing deployments need not declare it.
    max_step = {"canary_max_step_seconds": dg.EnvVar(MAX_STEP_VARIABLE)}
    return dg.Definitions(
        resources={
            "deployment": DeploymentPolicy(
                approvers=dg.EnvVar("MLPLATFORM_APPROVERS"),
                require_approval=dg.EnvVar("MLPLATFORM_REQUIRE_APPROVAL"),
                serving_url=dg.EnvVar("MLPLATFORM_SERVING_URL"),
                canary_min_requests=dg.EnvVar("MLPLATFORM_CANARY_MIN_REQUESTS"),
                canary_min_dwell_seconds=dg.EnvVar("MLPLATFORM_CANARY_MIN_DWELL_SECONDS"),
                **(max_step if os.environ.get(MAX_STEP_VARIABLE) else {}),
            )
        }
    )
