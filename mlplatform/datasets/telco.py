"""Loader for the IBM Telco customer-churn CSV, mapped onto the platform's churn concepts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlplatform.datasets.csv_source import DEFAULT_MAX_FILE_BYTES, SourceError, read_source_csv

__all__ = ["SourceError", "load_telco_csv"]

CONTRACT_MAP = {"Month-to-month": "monthly", "One year": "annual", "Two year": "multi-year"}
YES_NO = {"Yes": True, "No": False}
RENAMES = {
    "customerID": "customer_id",
    "tenure": "tenure_months",
    "MonthlyCharges": "monthly_spend",
    "TotalCharges": "total_spend",
    "Contract": "contract_type",
    "SeniorCitizen": "is_senior",
    "Partner": "has_partner",
    "Dependents": "has_dependents",
    "PaperlessBilling": "paperless_billing",
    "InternetService": "internet_service",
    "TechSupport": "tech_support",
    "OnlineSecurity": "online_security",
    "PaymentMethod": "payment_method",
    "Churn": "churned",
}


def load_telco_csv(path: str | Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> pd.DataFrame:
    """Reads the Telco CSV and maps it to the spec's column names and value vocabularies.

    ``TotalCharges`` is blank for customers with tenure 0; it becomes missing (not an error),
    and the spec declares ``total_spend`` nullable. Unrecognised Contract or Yes/No values are
    kept as they are so that validation reports them with their row numbers.

    Args:
        path: Location of the CSV file.
        max_bytes: Largest file accepted (see ``read_source_csv``).

    Returns:
        The mapped frame, one row per customer.

    Raises:
        SourceError: The file cannot be read as a Telco CSV (see ``read_source_csv``).
    """
    raw = read_source_csv(path, list(RENAMES), text=True, max_bytes=max_bytes)
    frame = raw[list(RENAMES)].rename(columns=RENAMES)
    frame["tenure_months"] = pd.to_numeric(frame["tenure_months"], errors="coerce")
    frame["monthly_spend"] = pd.to_numeric(frame["monthly_spend"], errors="coerce")
    # Blank strings mean "no charges yet"; anything else that is not a number stays visible.
    total = frame["total_spend"].str.strip()
    frame["total_spend"] = pd.to_numeric(total.where(total != ""), errors="coerce")
    frame["contract_type"] = frame["contract_type"].map(CONTRACT_MAP).fillna(frame["contract_type"])
    frame["is_senior"] = frame["is_senior"].map({"1": True, "0": False}).fillna(frame["is_senior"])
    for column in ("has_partner", "has_dependents", "paperless_billing", "churned"):
        frame[column] = frame[column].map(YES_NO).fillna(frame[column])
    return frame
