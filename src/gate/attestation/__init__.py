"""The signed verdict on the image: an SLSA Verification Summary Attestation (VSA v1) per decision.

- ``vsa``: the in-toto Statement v1 with the VSA predicate gate builds from a decision, signed in a
  DSSE envelope (gate.dsse) with gate's key, and read back (``read_statement``);
- ``oci``: attaching an envelope to an image in a registry (an OCI 1.1 referrer where the registry
  has the referrers API, else cosign's ``sha256-<hex>.att`` tag) and fetching what is attached;
- ``verify``: which attached VSA counts for (digest, environment) and whether it passes.
"""
