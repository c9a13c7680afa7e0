"""The fixed holdout: a persisted, versioned snapshot every model is judged on.

The first evaluation of a data set freezes a holdout, chosen by a salted hash of the id so the
choice does not depend on row order; later runs reuse the snapshot and train only on rows whose
ids are not in it, so no model ever trains on a holdout row. Replacing it is an explicit act
(``reset_holdout``), and the snapshot's content hash is logged with every model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlplatform.datasets.versioning import frame_digest

HOLDOUT_FILE = "holdout.parquet"
META_FILE = "holdout.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Holdout:
    """A frozen holdout snapshot.

    Attributes:
        frame: The holdout rows (validated, typed).
        version: Content hash of ``frame``.
        path: Where the snapshot is stored.
        created: True when this call created the snapshot.
    """

    frame: pd.DataFrame
    version: str
    path: Path
    created: bool


def in_holdout(ids: pd.Series, fraction: float, salt: str = "mlplatform-holdout") -> np.ndarray:
    """Deterministic holdout membership by a salted hash of each id.

    Args:
        ids: Row identifiers.
        fraction: Expected share of rows in the holdout, in (0, 1).
        salt: Changes the selection when the holdout is deliberately re-drawn.

    Returns:
        A boolean mask, True for holdout rows.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    buckets = [
        int.from_bytes(hashlib.sha256(f"{salt}:{i}".encode()).digest()[:8], "little") / 2**64
        for i in ids.astype(str)
    ]
    return np.asarray(buckets) < fraction


class HoldoutError(ValueError):
    """The frozen holdout no longer fits the data set; the message says how to replace it."""


def load_or_create_holdout(
    store_dir: Path,
    frame: pd.DataFrame,
    id_column: str,
    fraction: float,
    required_columns: Sequence[str] = (),
) -> Holdout:
    """Returns the data set's frozen holdout, creating it from ``frame`` on first use.

    Creation holds a lock on the store, so two runs starting together freeze one holdout.

    Args:
        store_dir: Directory of this data set's holdout snapshot.
        frame: Validated rows to draw from when no snapshot exists yet.
        id_column: Identifier column.
        fraction: Share of rows to hold out when creating.
        required_columns: Columns the snapshot must have (the current spec's).

    Returns:
        The holdout snapshot.

    Raises:
        HoldoutError: The stored snapshot lacks required columns (the spec changed).
    """
    store_dir.mkdir(parents=True, exist_ok=True)
    with (store_dir / LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        holdout = _load(store_dir) or _create(store_dir, frame, id_column, fraction)
    missing = [c for c in required_columns if c not in holdout.frame.columns]
    if missing:
        raise HoldoutError(
            f"the frozen holdout {holdout.version} at {holdout.path} lacks column(s) "
            f"{', '.join(missing)} of the current spec; models are only comparable on one "
            "holdout, so replacing it is deliberate: mlplatform reset-holdout --reason '...'"
        )
    return holdout


def _load(store_dir: Path) -> Holdout | None:
    path = store_dir / HOLDOUT_FILE
    if not path.exists():
        return None
    snapshot = pd.read_parquet(path)
    return Holdout(snapshot, frame_digest(snapshot), path, created=False)


def _create(store_dir: Path, frame: pd.DataFrame, id_column: str, fraction: float) -> Holdout:
    path = store_dir / HOLDOUT_FILE
    selected = frame.loc[in_holdout(frame[id_column], fraction)].reset_index(drop=True)
    # Write then rename so a crash never leaves a half-written holdout behind.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    selected.to_parquet(tmp, index=False)
    tmp.replace(path)
    # Hash what readers will see (the parquet round trip may change dtypes), so the version
    # is the same on the run that creates the snapshot and on every later run.
    snapshot = pd.read_parquet(path)
    version = frame_digest(snapshot)
    meta = {
        "version": version,
        "rows": len(snapshot),
        "fraction": fraction,
        "created_at": datetime.now(UTC).isoformat(),
    }
    (store_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    _record(store_dir, {"action": "created", **meta})
    return Holdout(snapshot, version, path, created=True)


def _record(store_dir: Path, entry: dict) -> None:
    with (store_dir / HISTORY_FILE).open("a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")


def holdout_history(store_dir: Path) -> list[dict]:
    """Every creation and reset of the data set's holdout, oldest first."""
    path = store_dir / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def training_rows(frame: pd.DataFrame, holdout: Holdout, id_column: str) -> pd.DataFrame:
    """Rows of ``frame`` whose ids are not in the holdout."""
    return frame.loc[~frame[id_column].isin(holdout.frame[id_column])].reset_index(drop=True)


def reset_holdout(store_dir: Path, by: str, reason: str) -> str | None:
    """Retires the frozen holdout so the next training run draws a new one, and records it.

    Models judged on different holdouts are not comparable, so this is deliberate: the history
    keeps who did it, when, why and which version was retired.

    Args:
        store_dir: Directory of the data set's holdout snapshot.
        by: Who resets it.
        reason: Why (required).

    Returns:
        The retired version, or None when there was no snapshot.

    Raises:
        ValueError: ``by`` or ``reason`` is empty.
    """
    if not by.strip() or not reason.strip():
        raise ValueError("resetting the holdout needs a name (by) and a reason")
    path = store_dir / HOLDOUT_FILE
    if not path.exists():
        return None
    with (store_dir / LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        retired = frame_digest(pd.read_parquet(path))
        for name in (HOLDOUT_FILE, META_FILE):
            (store_dir / name).unlink(missing_ok=True)
        _record(
            store_dir,
            {
                "action": "reset",
                "retired_version": retired,
                "by": by,
                "reason": reason,
                "at": datetime.now(UTC).isoformat(),
            },
        )
    return retired
