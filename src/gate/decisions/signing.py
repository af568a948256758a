"""Ed25519 signatures over decision records: the CI's private key signs, auditors need only public keys.

A record's signature is Ed25519 over the ASCII bytes of its ``hash`` (``sha256:<hex>``), and the
record names the key by ``signing_key``: the first 16 hex digits of the sha256 of the raw 32-byte
public key. ``hash`` covers ``signing_key`` and ``prev_hash``, so a signature vouches for the record,
its place in the chain and the name of the key that made it.

Where the keys come from:

- ``GATE_SIGNING_KEY``: path to the private key (PEM, PKCS8 as ``gate keys generate`` writes it,
  or an OpenSSH ``ssh-keygen -t ed25519`` key), not encrypted. Unset: a local key in the user's
  state folder (``$XDG_STATE_HOME/gate/signing-key.pem``), created on first use.
- ``GATE_TRUSTED_KEYS``: public-key PEM files, or folders of ``*.pem`` files, separated by
  ``os.pathsep`` or commas. Unset: only the key this machine signs with (GATE_SIGNING_KEY, else the
  local key) is trusted — fine for a developer's own log, not for an audit.

Both are read through gate.settings: the environment variable, else ``signing_key`` /
``trusted_keys`` in gate.toml (paths there are relative to the file's folder).

No message ever contains key material: errors name the file and the problem only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gate import settings
from gate.decisions.record import Decision
from gate.errors import GateError

logger = logging.getLogger(__name__)

#: file names ``gate keys generate`` writes
PRIVATE_KEY_FILE = "gate-signing.pem"
PUBLIC_KEY_FILE = "gate-signing.pub.pem"
#: the local key's file name in the user's state folder
LOCAL_KEY_FILE = "signing-key.pem"
#: no key file is this large; refuse to read more (a wrong path to a big file)
_MAX_KEY_BYTES = 64 * 1024
#: Ed25519 signatures are 64 bytes
_SIGNATURE_BYTES = 64


class SigningError(GateError):
    """A signing or trusted key cannot be made, read or used."""


class Signer(Protocol):
    """Signs record hashes (``Ed25519Signer`` below; the stores take any signer)."""

    #: the key's id, recorded as ``signing_key``
    key_id: str

    def sign(self, record_hash: str) -> str:
        """A base64 signature over the ASCII bytes of ``record_hash``."""
        ...


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key: what records name as ``signing_key``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Ed25519Signer:
    """Signs record hashes with an Ed25519 private key (a ``Signer``)."""

    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None, created: bool = False) -> None:
        self._key = private_key
        #: the key's id, recorded as ``signing_key``
        self.key_id = key_id(private_key.public_key())
        #: the file the key was read from
        self.path = path
        #: True when this call created the local key (the CLI says so on stderr)
        self.created = created

    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verifiers."""
        return self._key.public_key()

    def public_pem(self) -> bytes:
        """The public half as PEM, what GATE_TRUSTED_KEYS files hold."""
        return _public_pem(self._key.public_key())

    def sign(self, record_hash: str) -> str:
        """Base64 Ed25519 signature over the ASCII bytes of ``record_hash``."""
        try:
            message = record_hash.encode("ascii")
        except UnicodeEncodeError:
            raise SigningError("cannot sign a record hash that is not ASCII") from None
        return base64.b64encode(self._key.sign(message)).decode("ascii")

    def sign_bytes(self, data: bytes) -> bytes:
        """Raw Ed25519 signature over ``data`` (DSSE envelopes sign their PAE with it: gate.dsse)."""
        return self._key.sign(data)

    def __repr__(self) -> str:  # never the key itself
        return f"Ed25519Signer(key_id={self.key_id!r}, path={str(self.path)!r})"


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (refusing to replace anything) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_keypair(out_dir: str | Path) -> tuple[Path, Path]:
    """Write a new key pair into ``out_dir``: ``gate-signing.pem`` (PKCS8 PEM, mode 0600) and ``gate-signing.pub.pem``.

    Refuses to overwrite either file: replacing a signing key by accident would make every record
    it signed unverifiable for whoever trusts only the new one.
    """
    out = Path(out_dir)
    private_path, public_path = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise SigningError(f"{path} already exists: not overwriting a key; choose another --out folder")
    key = Ed25519PrivateKey.generate()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_new(private_path, _private_pem(key), 0o600)
    except OSError as e:
        raise SigningError(f"cannot write {private_path}: {e.strerror or e}") from None
    try:
        _write_new(public_path, _public_pem(key.public_key()), 0o644)
    except OSError as e:
        private_path.unlink(missing_ok=True)  # half a key pair is no key pair
        raise SigningError(f"cannot write {public_path}: {e.strerror or e}") from None
    return private_path, public_path


def local_key_path() -> Path:
    """``$XDG_STATE_HOME/gate/signing-key.pem`` (``~/.local/state`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gate" / LOCAL_KEY_FILE


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_BYTES + 1)
    except IsADirectoryError:
        raise SigningError(f"{what} {path}: is a folder, not a key file") from None
    except OSError as e:
        raise SigningError(f"{what} {path}: cannot read: {e.strerror or e}") from None
    if len(data) > _MAX_KEY_BYTES:
        raise SigningError(f"{what} {path}: over {_MAX_KEY_BYTES // 1024} KiB: not a key file")
    return data


def _kind(key: object) -> str:
    """A key's algorithm for messages ("an RSA key")."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519

    kinds: tuple[tuple[tuple[type, ...], str], ...] = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA key"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an EC key"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
        ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "an X25519 key"),
        ((x448.X448PrivateKey, x448.X448PublicKey), "an X448 key"),
    )
    for types, kind in kinds:
        if isinstance(key, types):
            return kind
    return "not an Ed25519 key"


def _load_private(path: Path, what: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; SigningError with one line (never key material) otherwise."""
    data = _read_key_file(path, what)
    if not data.strip():
        raise SigningError(f"{what} {path}: is empty")
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key: object = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise SigningError(
            f"{what} {path}: is encrypted with a passphrase; gate needs an unencrypted key file (keep it in a CI secret)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        hint = " (that is a public key: sign with the private one)" if b"PUBLIC KEY" in data or data.startswith(b"ssh-") else ""
        raise SigningError(f"{what} {path}: not a PEM private key{hint}; make one with `gate keys generate`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{what} {path}: is {_kind(key)}; gate signs with Ed25519 keys (`gate keys generate`)")
    return key


def _create_local_key(path: Path) -> bool:
    """Create the local key at ``path`` unless another process just did; True when this call created it.

    The key is written to a private temporary file and hard-linked into place, so a concurrent
    ``gate`` never reads half a key and two first uses at once end with one key, not two.
    """
    key = Ed25519PrivateKey.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(tmp, _private_pem(key), 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    except OSError as e:
        raise SigningError(f"cannot create a local signing key at {path}: {e.strerror or e}; set GATE_SIGNING_KEY") from None
    finally:
        tmp.unlink(missing_ok=True)


def load_signer() -> Ed25519Signer:
    """The key ``gate evaluate`` signs with: GATE_SIGNING_KEY, else the local key (created on first use).

    When this call created the local key, the returned signer's ``created`` is True: the caller
    tells the user (the CLI prints it on stderr).
    """
    configured = settings.current().env("GATE_SIGNING_KEY")
    if configured is not None:
        if not configured.strip():
            # A CI secret that did not expand: signing with a throwaway local key instead would go unnoticed.
            raise SigningError(
                "GATE_SIGNING_KEY is set but empty: point it at an Ed25519 private key (PEM), or unset it to use a local key"
            )
        path = Path(configured).expanduser()
        return Ed25519Signer(_load_private(path, settings.current().source("GATE_SIGNING_KEY")), path)
    path = local_key_path()
    created = False if path.exists() else _create_local_key(path)
    if created:
        logger.debug("created local signing key %s", path)
    return Ed25519Signer(_load_private(path, "local signing key"), path, created=created)


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a verifier accepts, by key id, and where they came from (for messages)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    #: one line: which keys are trusted and why
    source: str = ""
    #: False when GATE_TRUSTED_KEYS is unset and only this machine's own key is trusted
    configured: bool = True


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in ``path`` (PEM, or an OpenSSH ``ssh-ed25519`` line)."""
    data = _read_key_file(path, "GATE_TRUSTED_KEYS")
    if b"PRIVATE KEY-----" in data:
        raise SigningError(
            f"GATE_TRUSTED_KEYS {path}: is a private key; list public keys only (e.g. {PUBLIC_KEY_FILE})"
        )
    try:
        if data.lstrip().startswith(b"ssh-"):
            key: object = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError(f"GATE_TRUSTED_KEYS {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"GATE_TRUSTED_KEYS {path}: is {_kind(key)}; decision records are signed with Ed25519")
    return key


def _trusted_files(entry: str) -> list[Path]:
    path = Path(entry).expanduser()
    if path.is_dir():
        files: list[Path] = []
        for candidate in sorted(path.glob("*.pem")):
            if not candidate.is_file():
                continue
            head = _read_key_file(candidate, "GATE_TRUSTED_KEYS")
            if b"PRIVATE KEY-----" in head:  # gate keys generate writes both halves into one folder
                logger.debug("GATE_TRUSTED_KEYS: skipping private key %s", candidate)
                continue
            files.append(candidate)
        if not files:
            raise SigningError(f"GATE_TRUSTED_KEYS {path}: folder holds no public-key *.pem file")
        return files
    if not path.exists():
        raise SigningError(f"GATE_TRUSTED_KEYS {path}: no such file or folder")
    return [path]


def load_trust() -> TrustedKeys:
    """The trusted public keys, with a line saying where they came from."""
    configured = settings.current().env("GATE_TRUSTED_KEYS")
    if configured is not None:
        entries = [e.strip() for part in configured.split(os.pathsep) for e in part.split(",") if e.strip()]
        if not entries:
            raise SigningError("GATE_TRUSTED_KEYS is set but names no file: list public-key PEM files or folders")
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in entries:
            for path in _trusted_files(entry):
                public = load_public_key(path)
                keys[key_id(public)] = public
        ids = ", ".join(sorted(keys))
        return TrustedKeys(keys, f"{len(keys)} trusted key(s) from {settings.current().source('GATE_TRUSTED_KEYS')}: {ids}")
    signing = settings.current().env("GATE_SIGNING_KEY")
    if signing is not None and signing.strip():
        path = Path(signing).expanduser()
        where = settings.current().source("GATE_SIGNING_KEY")
        public = _load_private(path, where).public_key()
        origin = f"the {where} key {key_id(public)} ({path})"
    else:
        path = local_key_path()
        if not path.exists():
            return TrustedKeys(
                {}, f"GATE_TRUSTED_KEYS is unset and there is no local signing key at {path}: no key is trusted", False
            )
        public = _load_private(path, "local signing key").public_key()
        origin = f"the local key {key_id(public)} ({path})"
    return TrustedKeys(
        {key_id(public): public},
        f"GATE_TRUSTED_KEYS is unset: trusting only this machine's signing key, {origin}",
        False,
    )


def load_trusted_keys() -> dict[str, Ed25519PublicKey]:
    """Trusted public keys by key id: GATE_TRUSTED_KEYS, else only this machine's own signing key."""
    return load_trust().keys


class SignatureCheck(NamedTuple):
    """What is left of checking a signature once the cheap checks passed: one Ed25519 verification."""

    key: Ed25519PublicKey
    signature: bytes
    message: bytes

    def valid(self) -> bool:
        """True when the signature is valid for the message under the key."""
        try:
            self.key.verify(self.signature, self.message)
        except InvalidSignature:
            return False
        return True


def signature_check(decision: Decision, trusted: dict[str, Ed25519PublicKey]) -> str | SignatureCheck:
    """The cheap checks of ``decision``'s signature: what is wrong, or the verification left to do."""
    if not decision.signature or not decision.signing_key:
        return "unsigned: the record has no signature"
    public = trusted.get(decision.signing_key)
    if public is None:
        return f"signed by key {decision.signing_key}, which is not a trusted key (GATE_TRUSTED_KEYS)"
    try:
        raw = base64.b64decode(decision.signature, validate=True)
    except (binascii.Error, ValueError):
        return "bad signature: not base64"
    if len(raw) != _SIGNATURE_BYTES:
        return f"bad signature: {len(raw)} bytes, an Ed25519 signature has {_SIGNATURE_BYTES}"
    if not decision.hash or not decision.hash.isascii():
        return "the record has no hash to verify its signature against"
    return SignatureCheck(public, raw, decision.hash.encode("ascii"))


def bad_signature(signing_key: str | None) -> str:
    """The problem of a signature that does not verify."""
    return f"bad signature: it does not match the record's hash under key {signing_key}"


def verify_signature(decision: Decision, trusted: dict[str, Ed25519PublicKey]) -> str | None:
    """None when ``decision`` carries a valid signature by a trusted key; otherwise what is wrong."""
    check = signature_check(decision, trusted)
    if isinstance(check, str):
        return check
    return None if check.valid() else bad_signature(decision.signing_key)
