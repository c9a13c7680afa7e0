"""Content hashes of frames, used as Dagster data versions and MLflow dataset digests."""

from __future__ import annotations

import hashlib

import pandas as pd


def frame_digest(frame: pd.DataFrame, length: int = 16) -> str:
    """A stable content hash of a frame: same columns, dtypes and values give the same digest.

    Args:
        frame: The frame to hash; the index is ignored, row order matters.
        length: Number of hex characters to keep.

    Returns:
        A hex string.
    """
    hasher = hashlib.sha256()
    hasher.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()[:length]
