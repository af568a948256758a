"""VSA tests: the promotion tests' real registries (tests/promote/conftest.py), an empty Docker config per
test, decisions to attest and a signer of each kind."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.decisions.signing import Ed25519Signer
from tests.promote.conftest import auth_registry, docker_config, registry  # noqa: F401 — fixtures used here too


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def other_signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())
