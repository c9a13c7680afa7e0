"""``mlplatform load``: a bounded load against a running scoring server, with its report; and
the request bodies it sends.

Every request is one customer with an id of its own (``load-<n>``), so a canary split is
measured over as many customers as requests. Rows come from a JSON Lines file (one row per line,
as clients send them) or, for a synthetic data set, from its generator.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

# More ids than a fast server answers in a minute; they are reused in turn beyond that.
DISTINCT_IDS = 50_000


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSON Lines file, one JSON object per non-blank line.

    Raises:
        ValueError: The file has no row, or a line is not a JSON object (file and line named).
    """
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object (one row), got {row!r}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def single_row_bodies(rows: Sequence[dict], id_column: str, count: int, prefix: str) -> list[bytes]:
    """``count`` one-row ``dataframe_records`` bodies with distinct ids ``<prefix>-<i>``.

    Rows are reused in turn, each with a new id, so a sticky router sees ``count`` customers.

    Args:
        rows: JSON-ready rows (raw columns plus the id column).
        id_column: The column the server routes by; overwritten in each body.
        count: Bodies to build.
        prefix: Start of every id, so ids of different runs differ.

    Returns:
        The encoded bodies.
    """
    if not rows:
        raise ValueError("no rows to build request bodies from")
    return [
        json.dumps(
            {"dataframe_records": [{**rows[i % len(rows)], id_column: f"{prefix}-{i}"}]}
        ).encode()
        for i in range(count)
    ]


def synthetic_rows(spec, count: int = 1000) -> list[dict]:
    """``count`` customers from the synthetic generator, as clients send them (NaN as null).

    Raises:
        ValueError: The data set reads files, so it has no generator.
    """
    from mlplatform.datasets.synthetic import generate_batch
    from mlplatform.demo_release import request_rows

    if spec.source.get("kind") != "synthetic":
        raise ValueError(f"data set '{spec.name}' reads files: pass --rows with request rows")
    seed = int(spec.source.get("seed", 42))
    batch = generate_batch(date.today(), count, seed=seed)
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in request_rows(batch, spec)
    ]


def load(args: argparse.Namespace) -> int:
    """Runs the load and prints the report; exits 1 when a request failed."""
    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import apply_environment
    from mlplatform.loadtest import run_load
    from mlplatform.progress import progress

    if not (args.seconds > 0 and args.concurrency >= 1):
        print("mlplatform load: --seconds and --concurrency must be positive", file=sys.stderr)
        return 2
    apply_environment(args.dataset)
    spec = load_spec(os.environ["MLPLATFORM_DATASET"])
    try:
        rows = read_rows(args.rows) if args.rows else synthetic_rows(spec)
        bodies = single_row_bodies(rows, spec.id_column, DISTINCT_IDS, "load")
    except (OSError, ValueError) as exc:
        print(f"mlplatform load: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.seconds:g} s of load on {args.url} from {args.concurrency} clients "
        f"({len(rows)} rows, ids by {spec.id_column})"
    )

    with progress("load", total=args.seconds, unit="s") as bar:

        def show(now) -> None:
            note = f"{now.requests:,} requests, {now.failures} failed"
            bar.update(completed=min(now.elapsed, args.seconds), note=note)

        report = run_load(args.url, bodies, args.seconds, args.concurrency, on_progress=show)
    print(report.summary())
    return 1 if report.failures else 0


def add_load_command(commands) -> None:
    """Adds ``load`` to the ``mlplatform`` sub-commands."""
    parser = commands.add_parser("load", help="bounded load on a running scoring server")
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    # 16: the highest rate measured on a 2-core machine (mlplatform_tests/test_load.py).
    parser.add_argument("--concurrency", type=int, default=16, help="clients sending at once")
    parser.add_argument("--rows", type=Path, help="JSON Lines of request rows (default: synthetic)")
    parser.add_argument("--dataset", help="data set spec name or YAML path (for the id column)")
    parser.set_defaults(func=load)
