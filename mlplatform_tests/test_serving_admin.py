"""The serving admin endpoints: bearer token checked in constant time, 401/403 change nothing,
reload and the canary weight cap act on /health, the metrics and routing (fake registry).

How the token is configured (environment, CLI, manifest): test_serving_admin_config.py."""

from __future__ import annotations

import hmac
import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.serving import admin
from mlplatform.serving.admin import ADMIN_TOKEN_VAR, token_matches
from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.routing import arm_for
from mlplatform.serving.slot_state import CANARY_TAG, NoCanaryError
from mlplatform.serving.slots import ModelSlots

pytestmark = pytest.mark.security

TOKEN = "admin-token-0123456789abcdef"
WRONG = "wrong-token-fedcba9876543210"
SALT = "admin-test"


class FakeRegistry:
    """A registered model's aliases and tags; counts reads."""

    def __init__(self, **aliases):
        self.aliases, self.tags, self.reads, self.down = dict(aliases), {}, 0, False

    def get_registered_model(self, name):
        self.reads += 1
        if self.down:
            raise ConnectionError("registry unreachable")
        return SimpleNamespace(aliases=dict(self.aliases), tags=dict(self.tags))

    def canary(self, version, weight):
        self.aliases["canary"] = version
        self.tags[CANARY_TAG] = json.dumps(
            {"version": version, "weight": weight, "status": "running"}
        )


class FakeModel:
    def predict(self, frame):
        return np.column_stack([np.full(len(frame), 0.75), np.full(len(frame), 0.25)])


def _slots(registry) -> ModelSlots:
    # No background polls during a test: every refresh is the start-up one or an admin reload.
    return ModelSlots(registry, "m", poll_seconds=3600, loader=lambda name, version: FakeModel())


def _client(registry, token: str | None = TOKEN) -> TestClient:
    settings = ServingSettings(
        tracking_uri="unused", model_name="m", id_column="customer_id", salt=SALT, admin_token=token
    )
    return TestClient(create_app(settings, slots=_slots(registry)))


def _auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _metric(client, name: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exposed")


def _arms(client, ids) -> list[str]:
    arms = []
    for entity in ids:
        body = {"inputs": [{"customer_id": entity, "x": 1.0}]}
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        arms.append(response.headers["X-Model-Arm"])
    return arms


IDS = [f"c-{i}" for i in range(40)]


# --- the token ---------------------------------------------------------------------------


def test_tokens_are_compared_with_hmac_compare_digest_on_bytes(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(admin.hmac, "compare_digest", spy)
    assert token_matches(TOKEN, TOKEN.encode()) and not token_matches(WRONG, TOKEN.encode())
    with _client(FakeRegistry(champion="1")) as client:
        assert client.post("/admin/reload", headers=_auth(WRONG)).status_code == 401
        assert client.post("/admin/reload", headers=_auth()).status_code == 200
    right, wrong = (TOKEN.encode(), TOKEN.encode()), (WRONG.encode(), TOKEN.encode())
    assert calls == [right, wrong, wrong, right]


# --- refused requests change nothing -------------------------------------------------------

REFUSED = {
    "no header": {},
    "wrong token": _auth(WRONG),
    "empty bearer": {"Authorization": "Bearer "},
    "basic auth": {"Authorization": f"Basic {TOKEN}"},
    "token without scheme": {"Authorization": TOKEN},
    "token prefix": _auth(TOKEN[:-1]),
    "token plus suffix": _auth(TOKEN + "x"),
}


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
def test_a_missing_or_wrong_token_gets_401_and_changes_nothing(headers, caplog):
    registry = FakeRegistry(champion="1")
    registry.canary("2", 0.5)
    with _client(registry) as client:
        before, reads = client.get("/health").json(), registry.reads
        registry.aliases["champion"] = "3"  # only a reload would pick this up now
        answers = [
            client.post("/admin/reload", headers=headers),
            client.post("/admin/canary-weight", headers=headers, json={"weight": 0}),
            client.post("/admin/canary-weight", headers=headers, content=b"not json"),
            client.delete("/admin/canary-weight", headers=headers),
        ]
        for response in answers:
            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"] == "Bearer"
        assert registry.reads == reads
        assert client.get("/health").json() == before
        assert _metric(client, "mlplatform_canary_weight") == 0.5
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 4 and all(r.levelno == logging.WARNING for r in refused)
    assert all(TOKEN not in r.getMessage() and WRONG not in r.getMessage() for r in refused)


def test_without_a_configured_token_the_endpoints_are_disabled_with_403():
    registry = FakeRegistry(champion="1")
    registry.canary("2", 0.5)
    with _client(registry, token=None) as client:
        reads = registry.reads
        for headers in ({}, _auth(), {"Authorization": "Bearer "}):
            response = client.post("/admin/canary-weight", headers=headers, json={"weight": 0})
            assert response.status_code == 403
            assert ADMIN_TOKEN_VAR in response.json()["detail"]
            assert client.post("/admin/reload", headers=headers).status_code == 403
        assert registry.reads == reads
        assert client.get("/health").json()["canary_weight"] == 0.5


# --- authorised actions --------------------------------------------------------------------


def test_reload_reads_the_registry_at_once_and_answers_the_versions_served():
    registry = FakeRegistry(champion="1")
    with _client(registry) as client:
        registry.aliases.update(champion="2", previous="1")
        registry.canary("3", 0.25)
        # The scheme is case-insensitive (RFC 6750).
        response = client.post("/admin/reload", headers={"Authorization": f"bearer {TOKEN}"})
        assert response.status_code == 200
        served = response.json()
        assert (served["champion_version"], served["previous_version"]) == ("2", "1")
        assert (served["canary_version"], served["canary_weight"]) == ("3", 0.25)
        health = client.get("/health").json()
        assert (health["champion_version"], health["canary_weight"]) == ("2", 0.25)


def test_reload_during_a_registry_outage_answers_503_and_keeps_serving():
    registry = FakeRegistry(champion="1")
    with _client(registry) as client:
        registry.down = True
        response = client.post("/admin/reload", headers=_auth())
        assert response.status_code == 503
        assert "registry unreachable" in response.json()["detail"]
        assert client.get("/health").json()["champion_version"] == "1"
        assert _arms(client, IDS[:2]) == ["champion", "champion"]


def test_the_cap_sets_the_effective_weight_in_health_metrics_and_routing():
    registry = FakeRegistry(champion="1")
    registry.canary("2", 1.0)
    with _client(registry) as client:
        assert set(_arms(client, IDS)) == {"canary"}
        assert math.isnan(_metric(client, "mlplatform_canary_weight_override"))

        response = client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0})
        assert response.status_code == 200
        assert response.json()["canary_weight"] == 0.0
        assert response.json()["registry_canary_weight"] == 1.0
        health = client.get("/health").json()
        assert (health["canary_weight"], health["canary_weight_override"]) == (0.0, 0.0)
        assert health["canary_version"] == "2"  # still loaded, just no traffic
        assert _metric(client, "mlplatform_canary_weight") == 0.0
        assert _metric(client, "mlplatform_canary_weight_override") == 0.0
        assert set(_arms(client, IDS)) == {"champion"}

        client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0.5})
        expected = [arm_for(entity, 0.5, SALT) for entity in IDS]
        assert set(expected) == {"canary", "champion"}
        assert _arms(client, IDS) == expected

        response = client.delete("/admin/canary-weight", headers=_auth())
        assert response.status_code == 200 and response.json()["canary_weight_override"] is None
        health = client.get("/health").json()
        assert (health["canary_weight"], health["canary_weight_override"]) == (1.0, None)
        assert math.isnan(_metric(client, "mlplatform_canary_weight_override"))
        assert set(_arms(client, IDS)) == {"canary"}


def test_the_cap_never_raises_the_registry_weight_and_follows_its_changes():
    registry = FakeRegistry(champion="1")
    registry.canary("2", 0.05)
    with _client(registry) as client:
        capped = client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0.9})
        assert capped.json()["canary_weight"] == 0.05
        client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0.1})
        registry.canary("2", 0.25)  # the controller's next step, same canary
        served = client.post("/admin/reload", headers=_auth()).json()
        assert (served["canary_weight"], served["canary_weight_override"]) == (0.1, 0.1)
        assert served["registry_canary_weight"] == 0.25


def test_the_cap_lapses_when_the_registry_names_another_canary_or_none():
    registry = FakeRegistry(champion="1")
    registry.canary("2", 0.5)
    with _client(registry) as client:
        client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0})
        registry.canary("3", 0.05)
        served = client.post("/admin/reload", headers=_auth()).json()
        assert (served["canary_version"], served["canary_weight"]) == ("3", 0.05)
        assert served["canary_weight_override"] is None
        client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0})
        del registry.aliases["canary"], registry.tags[CANARY_TAG]
        client.post("/admin/reload", headers=_auth())
        registry.canary("3", 0.05)  # the same version again is a new canary: no cap
        assert client.post("/admin/reload", headers=_auth()).json()["canary_weight"] == 0.05


BAD_CAPS = [b'{"weight": 1.5}', b'{"weight": -0.1}', b'{"weight": "0.5"}', b'{"weight": true}']
BAD_CAPS += [b'{"weight": NaN}', b'{"weight": null}', b'{"share": 0.5}', b"[0.5]", b"not json"]


@pytest.mark.parametrize("body", BAD_CAPS)
def test_a_bad_cap_is_refused_with_422_and_changes_nothing(body):
    registry = FakeRegistry(champion="1")
    registry.canary("2", 0.5)
    with _client(registry) as client:
        response = client.post("/admin/canary-weight", headers=_auth(), content=body)
        assert response.status_code == 422, response.text
        assert client.get("/health").json()["canary_weight"] == 0.5
        # Authentication comes first: the same body without the token is a 401.
        assert client.post("/admin/canary-weight", content=body).status_code == 401


def test_a_cap_without_a_canary_is_a_409():
    with _client(FakeRegistry(champion="1")) as client:
        response = client.post("/admin/canary-weight", headers=_auth(), json={"weight": 0})
        assert response.status_code == 409 and "no canary" in response.json()["detail"]
        assert client.get("/health").json()["canary_weight_override"] is None


def test_the_slots_check_the_cap_themselves():
    registry = FakeRegistry(champion="1")
    slots = _slots(registry)
    slots.refresh()
    with pytest.raises(NoCanaryError):
        slots.set_canary_override(0.0)
    registry.canary("2", 0.5)
    slots.refresh()
    for bad in (-0.01, 1.01, float("nan"), True, "0"):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            slots.set_canary_override(bad)
    assert slots.set_canary_override(1).canary_weight == 0.5
    assert slots.clear_canary_override().canary_weight_override is None
