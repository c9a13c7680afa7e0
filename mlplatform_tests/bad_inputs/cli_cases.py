"""Hostile ``mlplatform`` commands and settings, and what each must answer.

``CLI_CASES`` run ``mlplatform.cli.main(argv)`` against a platform whose champion is v1 with no
``previous``; each must print a message naming the problem and exit nonzero, with no traceback
and no change to the registry. ``CONFIG_CASES`` are bad gate thresholds in the environment, read
by the retrain path that ``mlplatform demo`` and the daemon run (``lifecycle.run_job``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# argparse's exit code for a command line it cannot parse; the commands use it too.
USAGE = 2


@dataclass(frozen=True)
class CliCase:
    """One command line.

    Attributes:
        argv: Arguments after ``mlplatform``.
        says: Fragments of what the command prints on stderr.
        env: Environment overrides for the command.
        exit_code: The exit status it must end with.
    """

    argv: tuple[str, ...]
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int = USAGE


def _decide(command: str, version: str, by: str = "reviewer", reason: str = "looks good"):
    return (command, version, "--by", by, "--reason", reason)


CLI_CASES: dict[str, CliCase] = {
    "approve_unknown_model_version": CliCase(
        _decide("approve", "999"), ("mlplatform approve:", "has no version '999'")
    ),
    "reject_unknown_model_version": CliCase(
        _decide("reject", "999"), ("mlplatform reject:", "has no version '999'")
    ),
    "approve_a_version_that_is_not_a_number": CliCase(
        _decide("approve", "latest"), ("has no version 'latest'",)
    ),
    "approve_by_someone_not_an_approver": CliCase(
        _decide("approve", "1", by="mallory"), ("'mallory' is not an approver",)
    ),
    "approve_with_a_blank_reason": CliCase(
        _decide("approve", "1", reason="   "), ("a reason is required",)
    ),
    "approve_with_no_approvers_configured": CliCase(
        _decide("approve", "1"), ("no approvers are configured",), {"MLPLATFORM_APPROVERS": ""}
    ),
    "rollback_with_no_previous_version": CliCase(
        ("rollback", "--reason", "drill"),
        ("mlplatform rollback:", "has no previous version to roll back to", "champion v1"),
    ),
    "rollback_of_a_data_set_never_deployed": CliCase(
        ("rollback", "--dataset", "telco"),
        ("mlplatform-telco has no champion: nothing is deployed",),
    ),
    "backfill_day_that_is_not_a_date": CliCase(
        ("backfill", "--from", "2026-13-45", "--to", "2026-03-02"),
        ("'2026-13-45' is not a daily partition",),
    ),
    "backfill_range_backwards": CliCase(
        ("backfill", "--from", "2026-03-04", "--to", "2026-03-01"),
        ("the range 2026-03-04..2026-03-01 is empty",),
    ),
    "backfill_day_in_the_future": CliCase(
        ("backfill", "--from", "2026-03-01", "--to", "2999-01-01"),
        ("'2999-01-01' is not a daily partition",),
    ),
    "unknown_command": CliCase(("deploy-everything",), ("invalid choice: 'deploy-everything'",)),
    "rollback_timeout_not_a_number": CliCase(
        ("rollback", "--timeout", "soon"), ("argument --timeout: invalid float value: 'soon'",)
    ),
    "approve_without_a_reason": CliCase(
        ("approve", "1", "--by", "reviewer"), ("the following arguments are required: --reason",)
    ),
}

# Not a data set anyone has: the command must say so, not print a traceback.
UNKNOWN_DATA_SET = CliCase(
    ("rollback", "--dataset", "no_such_data_set"), ("unknown data set 'no_such_data_set'",)
)


@dataclass(frozen=True)
class ConfigCase:
    """A bad setting of the retrain path.

    Attributes:
        env: The environment variables set.
        says: Fragments of the run's failure.
    """

    env: dict[str, str]
    says: tuple[str, ...]


CONFIG_CASES: dict[str, ConfigCase] = {
    "min_auc_threshold_not_a_number": ConfigCase(
        {"MLPLATFORM_MIN_AUC": "eighty percent"},
        ("gate setting MLPLATFORM_MIN_AUC='eighty percent' is not a number",),
    ),
    "min_delta_threshold_out_of_range": ConfigCase(
        {"MLPLATFORM_MIN_DELTA": "0.9"},
        ("gate setting MLPLATFORM_MIN_DELTA=0.9 is outside [0.0, 0.5]",),
    ),
}
