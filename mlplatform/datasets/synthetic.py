"""Seeded generator of realistic customer-churn data, one batch per day.

The true churn probability is a known logistic function (``true_churn_logit``) in which longer
contracts lower churn, so tests can check that a model learnt the right direction. Knobs for
drift and for data faults make bad days reproducible for tests and demos.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

CONTRACT_TYPES = ("monthly", "annual", "multi-year")
REGIONS = ("north", "south", "east", "west", "central")
PAYMENT_METHODS = ("card", "bank_transfer", "invoice", "electronic_check")
UNSEEN_REGION = "arctic"
UNKNOWN_CONTRACT = "weekly"

_CONTRACT_EFFECT = {"monthly": 0.0, "annual": -1.8, "multi-year": -3.2}
_PAYMENT_EFFECT = {"card": 0.0, "bank_transfer": -0.2, "invoice": 0.1, "electronic_check": 0.6}
_REGION_EFFECT = {"north": 0.0, "south": 0.15, "east": -0.1, "west": 0.05, "central": 0.0}


@dataclass(frozen=True)
class DriftConfig:
    """Distribution shifts applied to a batch.

    Attributes:
        spend_multiplier: Multiplies monthly_spend (1.0 = no shift).
        tenure_shift_months: Added to tenure_months (clipped at 0).
        unseen_region_fraction: Fraction of rows whose region is a category never seen before.
        label_shift: Added to the true churn logit (concept/label shift).
        monthly_contract_share: Overrides the share of monthly contracts when set.
    """

    spend_multiplier: float = 1.0
    tenure_shift_months: float = 0.0
    unseen_region_fraction: float = 0.0
    label_shift: float = 0.0
    monthly_contract_share: float | None = None


@dataclass(frozen=True)
class FaultConfig:
    """Data faults injected into a batch, each as a fraction of rows.

    Attributes:
        null_fraction: Rows whose monthly_spend and contract_type are set to missing.
        out_of_range_fraction: Rows with a negative tenure_months.
        unknown_category_fraction: Rows with a contract_type outside the domain.
        duplicate_id_fraction: Rows whose customer_id repeats another row's.
    """

    null_fraction: float = 0.0
    out_of_range_fraction: float = 0.0
    unknown_category_fraction: float = 0.0
    duplicate_id_fraction: float = 0.0


def true_churn_logit(frame: pd.DataFrame, label_shift: float = 0.0) -> np.ndarray:
    """The generator's ground-truth churn logit for each row.

    Args:
        frame: Rows with the synthetic columns.
        label_shift: Constant added to every logit.

    Returns:
        One logit per row.
    """
    hour_angle = 2 * np.pi * frame["last_login_hour"].to_numpy(dtype=float) / 24.0
    return (
        0.2
        + frame["contract_type"].map(_CONTRACT_EFFECT).fillna(0.0).to_numpy()
        - 0.06 * frame["tenure_months"].to_numpy(dtype=float)
        + 0.018 * (frame["monthly_spend"].to_numpy(dtype=float) - 70.0)
        + 0.6 * frame["support_tickets"].to_numpy(dtype=float)
        - 1.2 * frame["is_enterprise"].to_numpy(dtype=float)
        # Night-time log-ins are an early churn signal in this world.
        + 0.8 * np.cos(hour_angle)
        + frame["payment_method"].map(_PAYMENT_EFFECT).fillna(0.0).to_numpy()
        + frame["region"].map(_REGION_EFFECT).fillna(0.0).to_numpy()
        + label_shift
    )


def _day_seed(seed: int, day: date) -> int:
    digest = hashlib.sha256(f"{seed}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def generate_batch(
    day: date,
    rows: int,
    seed: int = 42,
    drift: DriftConfig | None = None,
    faults: FaultConfig | None = None,
) -> pd.DataFrame:
    """Generates the customers observed on one day.

    The same (day, rows, seed, drift, faults) always gives the same frame, independently of
    which other days are generated.

    Args:
        day: Snapshot date of the batch.
        rows: Number of customers.
        seed: Base seed; each day derives its own stream from it.
        drift: Distribution shifts, none by default.
        faults: Injected data faults, none by default.

    Returns:
        One row per customer, with the true label drawn from ``true_churn_logit``.
    """
    drift = drift or DriftConfig()
    faults = faults or FaultConfig()
    rng = np.random.default_rng(_day_seed(seed, day))

    monthly_share = 0.55 if drift.monthly_contract_share is None else drift.monthly_contract_share
    rest = (1.0 - monthly_share) / 2
    contract = rng.choice(CONTRACT_TYPES, size=rows, p=[monthly_share, rest * 1.2, rest * 0.8])
    is_enterprise = rng.random(rows) < 0.22
    tenure = np.clip(rng.gamma(1.6, 14.0, rows) + drift.tenure_shift_months, 0, 240).round()
    signup = [
        day - timedelta(days=int(t * 30.44) + int(d))
        for t, d in zip(tenure, rng.integers(0, 28, rows), strict=False)
    ]
    base_spend = rng.lognormal(np.log(65.0), 0.45, rows) * np.where(is_enterprise, 2.5, 1.0)
    spend = np.clip(base_spend * drift.spend_multiplier, 5.0, 4999.0).round(2)
    tickets = rng.poisson(np.where(contract == "monthly", 1.4, 0.8))
    login_hour = (rng.normal(13.0, 5.0, rows).round() % 24).astype(int)
    region = rng.choice(REGIONS, size=rows, p=[0.25, 0.2, 0.2, 0.2, 0.15]).astype(object)
    if drift.unseen_region_fraction > 0:
        region[rng.random(rows) < drift.unseen_region_fraction] = UNSEEN_REGION
    payment = rng.choice(PAYMENT_METHODS, size=rows, p=[0.35, 0.25, 0.15, 0.25])

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{day:%Y%m%d}-{i:05d}" for i in range(rows)],
            "snapshot_date": pd.Timestamp(day),
            "signup_date": pd.to_datetime(signup),
            "tenure_months": tenure.astype(int),
            "monthly_spend": spend,
            "contract_type": contract.astype(object),
            "is_enterprise": is_enterprise,
            "support_tickets": tickets.astype(int),
            "last_login_hour": login_hour,
            "region": region,
            "payment_method": payment.astype(object),
        }
    )
    probability = 1.0 / (1.0 + np.exp(-true_churn_logit(frame, drift.label_shift)))
    frame["churned"] = rng.random(rows) < probability
    return _inject_faults(frame, faults, rng)


def _pick(rng: np.random.Generator, rows: int, fraction: float) -> np.ndarray:
    count = int(round(rows * fraction))
    return rng.choice(rows, size=count, replace=False) if count else np.array([], dtype=int)


def _inject_faults(frame: pd.DataFrame, faults: FaultConfig, rng: np.random.Generator):
    rows = len(frame)
    nulls = _pick(rng, rows, faults.null_fraction)
    if len(nulls):
        frame.loc[nulls, ["monthly_spend", "contract_type"]] = None
    out_of_range = _pick(rng, rows, faults.out_of_range_fraction)
    if len(out_of_range):
        frame.loc[out_of_range, "tenure_months"] = -frame.loc[out_of_range, "tenure_months"] - 1
    unknown = _pick(rng, rows, faults.unknown_category_fraction)
    if len(unknown):
        frame.loc[unknown, "contract_type"] = UNKNOWN_CONTRACT
    # Row 0 donates its id, so only rows 1.. may receive it (else a "duplicate" of itself).
    count = min(int(round(rows * faults.duplicate_id_fraction)), rows - 1)
    if count > 0:
        duplicates = rng.choice(np.arange(1, rows), size=count, replace=False)
        frame.loc[duplicates, "customer_id"] = frame["customer_id"].iloc[0]
    return frame


def generate_days(
    start: date,
    days: int,
    rows_per_day: int,
    seed: int = 42,
    drift: DriftConfig | None = None,
    faults: FaultConfig | None = None,
) -> pd.DataFrame:
    """Generates consecutive daily batches and stacks them.

    Args:
        start: First snapshot date.
        days: Number of days.
        rows_per_day: Customers per day.
        seed: Base seed.
        drift: Shifts applied to every day.
        faults: Faults injected into every day.

    Returns:
        All batches, index reset.
    """
    batches = [
        generate_batch(start + timedelta(days=offset), rows_per_day, seed, drift, faults)
        for offset in range(days)
    ]
    return pd.concat(batches, ignore_index=True)
