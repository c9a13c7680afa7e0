"""Admin endpoints of the serving process, behind a bearer token: reload from the registry now,
and cap the canary's traffic share (an emergency brake).

``POST /admin/reload`` reads the registry at once instead of at the next poll and answers the
versions now served. ``POST /admin/canary-weight`` with ``{"weight": w}`` caps the canary's
share at ``w`` in [0, 1]; ``DELETE /admin/canary-weight`` removes the cap. The cap only ever
lowers the registry's weight (the effective weight is the smaller of the two), so it can stop
a canary but never push more traffic to it than the canary controller decided; it lapses when
the registry names another canary. ``/health`` and the ``mlplatform_canary_weight`` gauge
report the effective weight, next to the cap (``canary_weight_override``,
``mlplatform_canary_weight_override``; NaN without one).

Scope: one process. Behind a Service with several replicas a request reaches one pod; for the
whole fleet change the registry (``mlplatform rollback``, the canary tag), which every replica
follows within a poll, or call each pod.

Authentication: ``Authorization: Bearer <token>`` against the token in
``MLPLATFORM_SERVING_ADMIN_TOKEN``, read once when ``mlplatform serve`` starts and compared in
constant time (:func:`hmac.compare_digest`). A missing or wrong token gets 401 with
``WWW-Authenticate: Bearer`` and changes nothing; the attempt is logged with method, path,
client address and reason, never with what was presented. Without a configured token every
admin endpoint answers 403: administration is disabled, and no token could be right.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from mlplatform.serving.slot_state import NoCanaryError, RegistryReadError, SlotState
from mlplatform.serving.slots import ModelSlots

logger = logging.getLogger(__name__)

ADMIN_TOKEN_VAR = "MLPLATFORM_SERVING_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16
# RFC 6750's b64token: what fits in an Authorization header unquoted.
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def admin_token_from_environment(environ: Mapping[str, str]) -> str | None:
    """The admin token from ``MLPLATFORM_SERVING_ADMIN_TOKEN``; None when unset or empty.

    Surrounding whitespace is dropped (a secret file's trailing newline).

    Args:
        environ: The environment, e.g. ``os.environ``.

    Returns:
        The token, or None: admin endpoints disabled.

    Raises:
        ValueError: The token is shorter than 16 characters or has characters a bearer token
            cannot have. The message names the variable, never the value.
    """
    token = environ.get(ADMIN_TOKEN_VAR, "").strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN_CHARACTERS.fullmatch(token):
        raise ValueError(
            f"{ADMIN_TOKEN_VAR} must be at least {MIN_TOKEN_LENGTH} characters of "
            "A-Z a-z 0-9 - . _ ~ + / (trailing =), e.g. the output of `openssl rand -hex 32`"
        )
    return token


def token_matches(presented: str, expected: bytes) -> bool:
    """Whether the presented token is the expected one, in time independent of where they differ.

    Args:
        presented: The token from the request.
        expected: The configured token, UTF-8 encoded.
    """
    return hmac.compare_digest(presented.encode("utf-8"), expected)


def _bearer_token(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


def _authenticator(token: str | None):
    expected = token.encode("utf-8") if token else None

    async def authenticate(request: Request) -> None:
        if expected is None:
            raise HTTPException(
                403, f"admin endpoints are disabled: {ADMIN_TOKEN_VAR} is not configured"
            )
        presented = _bearer_token(request.headers.get("authorization"))
        client = request.client.host if request.client else "unknown"
        if presented is not None and token_matches(presented, expected):
            # WARNING, not INFO: an audit trail that shows at the server's default log level.
            logger.warning("admin %s %s from %s accepted", request.method, request.url.path, client)
            return
        reason = "no bearer token" if presented is None else "wrong token"
        logger.warning(
            "admin %s %s from %s refused: %s", request.method, request.url.path, client, reason
        )
        raise HTTPException(
            401, "a valid admin bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )

    return authenticate


def state_view(state: SlotState) -> dict:
    """What an admin answer reports: the versions and weights now served."""
    return {
        "champion_version": state.champion_version,
        "previous_version": state.previous_version,
        "canary_version": state.canary_version,
        "canary_weight": state.canary_weight,
        "registry_canary_weight": state.registry_canary_weight,
        "canary_weight_override": state.canary_weight_override,
        "refreshed_at": state.refreshed_at,
    }


async def _requested_weight(request: Request):
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "weight" not in body:
        raise HTTPException(422, 'the body must be JSON {"weight": <number in [0, 1]>}')
    return body["weight"]


def admin_router(slots: ModelSlots, token: str | None) -> APIRouter:
    """The admin endpoints on ``slots``, each behind the bearer token.

    Args:
        slots: The serving process's model slots.
        token: The admin token; None disables the endpoints (403).

    Returns:
        A router to include in the serving app.
    """
    router = APIRouter(prefix="/admin", dependencies=[Depends(_authenticator(token))])

    @router.post("/reload")
    async def reload() -> dict:
        try:
            state = await run_in_threadpool(slots.refresh, raise_registry_errors=True)
        except RegistryReadError as exc:
            raise HTTPException(503, f"{exc}; the current models keep serving") from None
        return state_view(state)

    @router.post("/canary-weight")
    async def cap_canary(request: Request) -> dict:
        weight = await _requested_weight(request)
        try:
            state = slots.set_canary_override(weight)
        except ValueError as exc:
            raise HTTPException(422, str(exc)[:200]) from None
        except NoCanaryError as exc:
            raise HTTPException(409, str(exc)) from None
        return state_view(state)

    @router.delete("/canary-weight")
    async def uncap_canary() -> dict:
        return state_view(slots.clear_canary_override())

    return router
