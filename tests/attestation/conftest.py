"""VSA tests: the promotion tests' real registries (tests/promote/conftest.py), an empty Docker config per
test, decisions to attest and a signer of each kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.decisions.signing import Ed25519Signer
from tests.attestation.referrers_standin import ReferrersStandIn
from tests.promote.conftest import auth_registry, docker_config, registry  # noqa: F401 — fixtures used here too
from tests.promote.servers import Registry


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def other_signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def referrers_registry(registry: Registry) -> Iterator[ReferrersStandIn]:
    """The real registry behind the referrers-API stand-in (tests/attestation/referrers_standin.py)."""
    standin = ReferrersStandIn(registry.url)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
