"""The models a serving process holds: champion, previous (N-1) and canary, kept in step with
the MLflow registry.

The registry is the only source of truth: aliases say which version serves, the registered
model tag ``mlplatform.canary`` says whether a canary runs and with which weight. A background
thread polls it; a version is loaded once and cached by number, so a rollback to ``previous``
or the promotion of the canary is a pointer swap. Every change is published by assigning one
new immutable :class:`SlotState`, so a request that took a snapshot keeps its models to the
end. Failures (registry unreachable, a version that does not load) are logged and the current
models keep serving.

An operator may cap the canary's traffic share in this process (an emergency brake, see
:meth:`ModelSlots.set_canary_override`). The cap only lowers the registry's weight, never
raises it, and lapses when the registry names another canary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlplatform.ml.registry import CHAMPION, PREVIOUS
from mlplatform.redaction import redact_text
from mlplatform.serving.fast_path import row_scorer_for_model
from mlplatform.serving.slot_state import (
    CANARY,
    CANARY_TAG,
    LoadedModel,
    NoCanaryError,
    RegistryReadError,
    SlotState,
    canary_assignment,
)

logger = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 60.0


def load_pyfunc(model_name: str, version: str) -> Any:
    """Loads a registered version as an MLflow pyfunc model (registry URI set globally).

    Only from the registry, and only after the version's artefacts match the SHA-256 recorded
    at registration; the model loads from the very copy that was checked.

    Raises:
        ArtifactIntegrityError: The artefacts changed after registration or have no digest
            (:class:`ModelSlots` logs it, keeps the current model and retries with back-off).
    """
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from mlplatform.ml.integrity import verify_model_version

    return mlflow.pyfunc.load_model(verify_model_version(MlflowClient(), model_name, version))


class ModelSlots:
    """Champion, previous and canary models of one registered model, refreshed in the background.

    Args:
        client: An ``MlflowClient`` (only ``get_registered_model`` is used).
        model_name: Registered model name.
        poll_seconds: Seconds between registry polls.
        loader: ``(model_name, version) -> model``; the pyfunc loader by default.
    """

    def __init__(
        self,
        client: Any,
        model_name: str,
        poll_seconds: float = 0.5,
        loader: Callable[[str, str], Any] = load_pyfunc,
    ):
        self.client = client
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self._loader = loader
        self._state = SlotState()
        self._cache: dict[str, LoadedModel] = {}
        self._failed: dict[str, tuple[float, float]] = {}  # version -> (retry at, delay)
        self._last_problem: str | None = None
        self._refresh_lock = threading.Lock()
        # Held only to publish a state; an override never waits for a slow model load.
        self._publish_lock = threading.Lock()
        self._override: tuple[str, float] | None = None  # (canary version, weight cap)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> SlotState:
        """The current state; take it once per request and use only it."""
        return self._state

    def _load(self, version: str | None) -> LoadedModel | None:
        if version is None:
            return None
        if version in self._cache:
            return self._cache[version]
        retry_at, delay = self._failed.get(version, (0.0, 0.5))
        if time.monotonic() < retry_at:
            return None
        try:
            model = self._loader(self.model_name, version)
        except Exception:  # noqa: BLE001 - any load failure must leave the current models serving
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            self._failed[version] = (time.monotonic() + delay, delay)
            logger.exception(
                "loading %s v%s failed; retry in %.0fs", self.model_name, version, delay
            )
            return None
        self._failed.pop(version, None)
        metadata = getattr(model, "metadata", None)
        scorer = row_scorer_for_model(model, f"{self.model_name} v{version}")
        signature = getattr(metadata, "signature", None)
        loaded = LoadedModel(version, model, signature, time.time(), scorer)
        self._cache[version] = loaded
        logger.info("loaded %s v%s", self.model_name, version)
        return loaded

    def _report(self, problem: str | None) -> None:
        # Polls run twice a second: say each problem once, not on every poll.
        if problem and problem != self._last_problem:
            logger.warning("%s", problem)
        self._last_problem = problem

    def refresh(self, *, raise_registry_errors: bool = False) -> SlotState:
        """Reads aliases and the canary tag (one registry call) and publishes the new state.

        A version that fails to load keeps its slot's current model (the champion never
        becomes nothing); a canary that is not loaded gets no traffic.

        Args:
            raise_registry_errors: Raise when the registry cannot be read (an operator's
                reload); the poller leaves it False and keeps the current state.

        Returns:
            The state now served.

        Raises:
            RegistryReadError: The registry read failed and ``raise_registry_errors`` is set;
                the message has any URL password masked.
        """
        with self._refresh_lock:
            try:
                registered = self.client.get_registered_model(self.model_name)
            except Exception as exc:  # noqa: BLE001 - registry outages must not stop serving
                # The error may quote the tracking URI, password included.
                problem = f"registry read for {self.model_name} failed: {redact_text(str(exc))}"
                self._report(problem)
                if raise_registry_errors:
                    raise RegistryReadError(problem) from None
                return self._state
            aliases = {k: str(v) for k, v in (registered.aliases or {}).items()}
            tag = (registered.tags or {}).get(CANARY_TAG)
            canary_version, weight = canary_assignment(tag, aliases.get(CANARY))
            current = self._state
            wanted = {
                "champion": aliases.get(CHAMPION),
                "previous": aliases.get(PREVIOUS),
                "canary": canary_version,
            }
            if wanted["champion"] is None:
                self._report(f"{self.model_name} has no '{CHAMPION}' alias")
            else:
                self._report(None)
            slots = {}
            for slot, version in wanted.items():
                loaded = self._load(version)
                # Champion and previous keep their current model when the new one fails.
                keep = getattr(current, slot) if slot != "canary" else None
                slots[slot] = loaded if loaded is not None or version is None else keep
            if slots["champion"] is None:
                slots["champion"] = current.champion
            new = SlotState(
                **slots,
                registry_canary_weight=weight if slots["canary"] is not None else 0.0,
                refreshed_at=time.time(),
            )
            with self._publish_lock:
                if self._override is not None and self._override[0] != canary_version:
                    logger.warning(
                        "canary weight override for v%s lapsed: the registry's canary is now %s",
                        self._override[0],
                        f"v{canary_version}" if canary_version else "none",
                    )
                    self._override = None
                new = self._publish(new)
            keep_versions = {m.version for m in (new.champion, new.previous, new.canary) if m}
            self._cache = {v: m for v, m in self._cache.items() if v in keep_versions}
            return new

    def _publish(self, state: SlotState) -> SlotState:
        """Makes ``state``, with the override applied, the current one (publish lock held)."""
        cap = self._override[1] if self._override is not None else None
        weight = state.registry_canary_weight
        new = replace(
            state,
            canary_weight=weight if cap is None else min(weight, cap),
            canary_weight_override=cap,
        )
        self._state = new  # one assignment: readers see the old or the new state, whole
        return new

    def set_canary_override(self, weight: float) -> SlotState:
        """Caps the canary's traffic share in this process (0 stops it at once).

        The cap binds to the canary serving now and lapses when the registry names another
        canary or none. It never raises the share above the registry's weight: the canary
        controller's plan stays the upper bound. Other serving processes are not affected.

        Args:
            weight: The cap, in [0, 1].

        Returns:
            The state now served.

        Raises:
            ValueError: ``weight`` is not a number in [0, 1].
            NoCanaryError: No canary is loaded and serving.
        """
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise ValueError(f"canary weight override must be a number in [0, 1], got {weight!r}")
        with self._publish_lock:
            canary = self._state.canary
            if canary is None:
                raise NoCanaryError(f"{self.model_name} has no canary serving: nothing to cap")
            self._override = (canary.version, float(weight))
            logger.warning("canary v%s weight capped at %g in this process", canary.version, weight)
            return self._publish(self._state)

    def clear_canary_override(self) -> SlotState:
        """Removes the cap (the registry's weight applies again); returns the state now served."""
        with self._publish_lock:
            if self._override is not None:
                logger.warning("canary v%s weight cap removed", self._override[0])
            self._override = None
            return self._publish(self._state)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the poller must outlive any bug in one poll
                logger.exception("refreshing %s failed", self.model_name)

    def start(self) -> SlotState:
        """Loads the current models, then polls in a daemon thread until :meth:`stop`."""
        state = self.refresh()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"model-slots-{self.model_name}", daemon=True
            )
            self._thread.start()
        return state

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the polling thread (a load in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
