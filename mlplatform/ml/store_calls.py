"""Where MLflow store calls are retried (policy and rules: :mod:`mlplatform.ml.retry`).

:class:`RetryingClient` retries the ``MlflowClient`` calls that are one idempotent request:
every alias move, tag write and read of the deploy step, rollback, canary controller and
training go through it (``MLflowResource.client()``). A registration is several store calls,
so :func:`retry_registration` retries it as a whole, and only until it has created a version.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeVar

from mlplatform.ml.retry import RetryPolicy, call_with_retry

T = TypeVar("T")


class RegistrationTookEffectError(RuntimeError):
    """A failed registration had created its version already, so it was not retried."""


# MlflowClient methods that are one idempotent store request (reads, or a read before a
# "set"/"delete"): calling one again after a failure without effect cannot change the result.
# Creating calls (runs, versions) are absent on purpose: see retry_registration.
RETRIED_METHODS = frozenset(
    {
        "delete_model_version_tag",
        "delete_registered_model_alias",
        "delete_registered_model_tag",
        "download_artifacts",
        "get_experiment_by_name",
        "get_model_version",
        "get_model_version_by_alias",
        "get_model_version_download_uri",
        "get_registered_model",
        "get_run",
        "search_model_versions",
        "set_model_version_tag",
        "set_registered_model_alias",
        "set_registered_model_tag",
        "set_terminated",
    }
)


class RetryingClient:
    """An ``MlflowClient`` whose idempotent calls (RETRIED_METHODS) are retried by a policy.

    Other attributes are the client's own, unchanged.
    """

    def __init__(
        self,
        client,
        *,
        store_uri: str,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.unwrapped = client
        self.store_uri = store_uri
        self.policy = policy
        self._sleep = sleep

    def __getattr__(self, name: str):
        if name == "unwrapped":  # not set yet (e.g. during copy): no recursion
            raise AttributeError(name)
        value = getattr(self.unwrapped, name)
        if name not in RETRIED_METHODS:
            return value

        @functools.wraps(value)
        def retried(*args, **kwargs):
            shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            if len(shown) > 200:  # a canary state tag is kilobytes of JSON
                shown = shown[:200] + "..."
            return call_with_retry(
                f"{name}({shown})",
                lambda: value(*args, **kwargs),
                store_uri=self.store_uri,
                policy=self.policy,
                sleep=self._sleep,
            )

        return retried


def retry_registration(
    register: Callable[[], T],
    *,
    client,
    model_name: str,
    run_id: str,
    store_uri: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Registers a model version from the active run, retried, but never a second version.

    Registration is several store calls (log the artefacts, create the version, record its
    digest), so a failure without effect may come after the version was created. Before each
    retry the registry is asked for versions of ``model_name`` from ``run_id``; if there is
    one, nothing is retried.

    Args:
        register: Logs and registers (e.g. ``log_and_register`` with its arguments bound).
        client: ``MlflowClient`` (or RetryingClient) of the registry, for the check.
        model_name: Registered model name.
        run_id: The MLflow run the version is created from.
        store_uri: The store, for error messages.
        policy: Attempts and back-off.
        sleep: Waits between attempts.

    Returns:
        What ``register`` returned.

    Raises:
        StoreUnavailableError: The store stayed unavailable; no version was created.
        RegistrationTookEffectError: An attempt created a version before it failed.
    """
    raw_client = getattr(client, "unwrapped", client)

    def nothing_registered_yet() -> None:
        query = f"name = '{model_name}' and run_id = '{run_id}'"
        versions = sorted(int(v.version) for v in raw_client.search_model_versions(query))
        if versions:
            created = ", ".join(f"v{v}" for v in versions)
            raise RegistrationTookEffectError(
                f"{model_name}: run {run_id} created {created} before a store call "
                "failed, so registration was not retried (it would register another version); "
                "without the challenger alias they are never evaluated or deployed"
            )

    return call_with_retry(
        f"register a version of {model_name} from run {run_id}",
        register,
        store_uri=store_uri,
        policy=policy,
        sleep=sleep,
        before_retry=nothing_registered_yet,
    )
