"""What "no state change" compares: a registered model's versions, aliases and tags."""

from __future__ import annotations

from mlflow import MlflowClient


def registry_state(client: MlflowClient, model_name: str) -> dict:
    """Every version's status, tags and aliases, and the model's aliases and tags."""
    model = client.get_registered_model(model_name)
    versions = {
        str(v.version): (v.status, dict(v.tags), sorted(v.aliases))
        for v in client.search_model_versions(f"name = '{model_name}'")
    }
    aliases = {alias: str(version) for alias, version in model.aliases.items()}
    return {"versions": versions, "aliases": aliases, "tags": dict(model.tags)}
