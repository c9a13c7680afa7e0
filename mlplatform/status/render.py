"""``mlplatform status`` as compact text tables (and the same state as JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tabulate import tabulate

from mlplatform.status.model import PlatformStatus, VersionRow

# Table cells longer than this are cut (the JSON output keeps them whole).
MAX_CELL = 60


def _short_time(iso: str | None) -> str:
    """An ISO 8601 time as ``MM-DD HH:MM`` (UTC), or the text unchanged if it is not one."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%m-%d %H:%M")
    except ValueError:
        return iso


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def _approval(row: VersionRow) -> str:
    if row.approval is None:
        return "-"
    return f"{row.approval} by {row.approval_by} {_short_time(row.approval_at)}".strip()


def _note(row: VersionRow) -> str:
    notes = []
    if row.canary_outcome:
        notes.append(f"canary {row.canary_outcome}")
    if row.rolled_back:
        # "<ISO time> by <who>: <reason>"
        when, _, rest = row.rolled_back.partition(" by ")
        notes.append(f"rolled back {_short_time(when)} by {rest}" if rest else "rolled back")
    return _cut("; ".join(notes))


def _share(errors: float, requests: float) -> str:
    rate = f" ({errors / requests:.1%})" if requests else ""
    return f"{requests:,.0f} req / {errors:,.0f} err{rate}"


def _models_table(status: PlatformStatus) -> str:
    rows = [
        [
            row.role,
            f"v{row.version}" if row.version else "-",
            f"{row.auc} {row.auc_ci or ''}".strip() if row.auc else "-",
            row.decision or "-",
            _approval(row),
            _short_time(row.created_at.replace("Z", "+00:00")) if row.created_at else "-",
            _note(row),
        ]
        for row in status.versions
    ]
    headers = [
        "role",
        "version",
        "holdout AUC [95% CI]",
        "decision",
        "approval",
        "created",
        "notes",
    ]
    return tabulate(rows, headers=headers, tablefmt="simple")


def _canary_line(status: PlatformStatus) -> str:
    canary = status.canary
    if canary is None:
        return "canary    none yet"
    champion = f"v{canary.champion_version}" if canary.champion_version else "none"
    return (
        f"canary    v{canary.version} {canary.status}, step {canary.step}/{canary.steps} at "
        f"{canary.weight:.0%}; canary {_share(canary.canary_errors, canary.canary_requests)}, "
        f"champion {champion} {_share(canary.champion_errors, canary.champion_requests)}; "
        f"updated {canary.updated_at}\n          last: {_cut(canary.last_event)}"
    )


def _drift_line(status: PlatformStatus) -> str:
    drift = status.drift
    if drift is None:
        return "drift     not checked yet (psi_drift_sensor runs once a champion exists)"
    return (
        f"drift     {drift.level}: max PSI {drift.max_psi:.3f} on {drift.max_feature} "
        f"(day {drift.day}, {drift.rows:,} rows vs champion v{drift.champion_version}; "
        f"watch > 0.1, drift > 0.2), checked {drift.checked_at}"
    )


def _triggers_table(status: PlatformStatus) -> str:
    rows = [
        [t.trigger, t.kind, t.started_at or "never", t.status or "-", t.run_id or "-"]
        for t in status.triggers
    ]
    headers = ["trigger", "kind", "last run", "status", "run id"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def render_text(status: PlatformStatus) -> str:
    """The status as a few compact tables and lines, attention items last."""
    lines = [
        f"mlplatform status: data set {status.dataset}, model {status.model_name}",
        f"Dagster instance {status.dagster_home}; MLflow {status.tracking_uri}",
        "",
        _models_table(status),
        "",
        _canary_line(status),
        _drift_line(status),
        "",
        _triggers_table(status),
        "",
    ]
    if status.attention:
        lines.append(f"needs attention ({len(status.attention)}):")
        lines += [f"  ! {item}" for item in status.attention]
    else:
        lines.append("needs attention: nothing")
    return "\n".join(lines)


def render_json(status: PlatformStatus) -> str:
    """The status as JSON (``--json``): every field of every row, machine-readable."""
    return json.dumps(status.to_dict(), indent=2, sort_keys=True)
