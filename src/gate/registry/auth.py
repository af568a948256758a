"""Registry credentials from the standard Docker config, and the registry's auth challenge as an httpx.Auth.

Credentials come from ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``), in Docker's
order: a per-registry ``credHelpers`` entry, else the ``credsStore`` default helper, else ``auths``
(base64 ``auth``, or ``username``/``password``, or ``identitytoken``). A helper that has nothing for
the registry falls back to ``auths``. Helpers are run as ``docker-credential-<name> get`` with the
server URL on stdin (argument list, never a shell). Their output is never repeated in errors.

``RegistryAuth`` answers the registry's ``WWW-Authenticate`` challenge: ``Basic`` sends the credentials,
``Bearer realm=,service=,scope=`` fetches a token from the realm for the scopes the caller asked for
(plus the challenge's own), so one token covers ``pull,push`` on the target and ``pull`` on a mount's
source repository. After the first challenge the header is sent up front, so streamed bodies are not
retried.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gate.errors import RegistryError
from gate.imageref import DOCKER_HUB, DOCKER_HUB_INDEX_HOST
from gate.registry.hosts import credential_key

logger = logging.getLogger(__name__)

HELPER_TIMEOUT = 30.0
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token; secrets are kept out of ``repr``."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in a message (for scrubbing other tools' output)."""
        return tuple(s for s in (self.password, self.identity_token) if s)


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _hostname(key: str) -> str:
    """Docker's ConvertToHostname: ``https://host:port/v1/`` → ``host:port``."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key.split("/", 1)[0]


def _read_config(path: Path) -> dict[str, object]:
    """config.json as a dict ({} when absent); a malformed file is a RegistryError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise RegistryError(f"{path}: cannot read Docker config ({e.strerror})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RegistryError(f"{path}: Docker config is not valid JSON (line {e.lineno})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: Docker config is not a JSON object")
    return data


def _from_auths(auths: object, registry: str, path: Path) -> Credentials | None:
    """The ``auths`` entry for ``registry`` (exact key first, then any key with the same host)."""
    if not isinstance(auths, dict):
        return None
    key = credential_key(registry)
    entry = auths.get(key)
    if entry is None:
        wanted = DOCKER_HUB_INDEX_HOST if registry == DOCKER_HUB else registry
        entry = next((v for k, v in auths.items() if _hostname(k) == wanted), None)
    if not isinstance(entry, dict):
        return None
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{path}: auths entry for {registry} has an invalid base64 'auth' value") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise RegistryError(f"{path}: auths entry for {registry}: 'auth' is not base64 of user:password")
    token = str(entry.get("identitytoken") or "")
    if not (username or password or token):
        return None
    return Credentials(username, password, token)


def run_credential_helper(name: str, server: str) -> Credentials | None:
    """``docker-credential-<name> get`` with ``server`` on stdin; None when it has no credentials for it."""
    program = f"docker-credential-{name}"
    executable = shutil.which(program)
    if executable is None:
        raise RegistryError(f"credential helper {program} (for {server}) is not on PATH")
    try:
        done = subprocess.run(
            [executable, "get"], input=server, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"credential helper {program} did not answer for {server} within {HELPER_TIMEOUT:.0f} s"
        ) from None
    except OSError as e:
        raise RegistryError(f"credential helper {program} cannot be run: {e.strerror}") from None
    if done.returncode != 0:
        if "credentials not found" in (done.stdout + done.stderr).lower():
            return None
        raise RegistryError(
            f"credential helper {program} failed for {server} (exit {done.returncode}; its output is not shown)"
        )
    try:
        data = json.loads(done.stdout)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (json.JSONDecodeError, AttributeError):
        raise RegistryError(f"credential helper {program} answered {server} with something that is not JSON") from None
    if not (username or secret):
        return None
    if username == "<token>":  # the helper protocol's marker for an identity token
        return Credentials(identity_token=secret)
    return Credentials(username, secret)


def load_credentials(registry: str) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``, or Docker Hub) from the Docker config, or None."""
    path = docker_config_path()
    config = _read_config(path)
    helpers = config.get("credHelpers")
    helper = None
    if isinstance(helpers, dict):
        helper = helpers.get(registry) or (helpers.get(DOCKER_HUB_INDEX_HOST) if registry == DOCKER_HUB else None)
    helper = helper or config.get("credsStore")
    if helper:
        found = run_credential_helper(str(helper), credential_key(registry))
        if found is not None:
            logger.debug("credentials for %s from docker-credential-%s", registry, helper)
            return found
    found = _from_auths(config.get("auths"), registry, path)
    if found is not None:
        logger.debug("credentials for %s from %s", registry, path)
    return found


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class RegistryAuth(httpx.Auth):
    """Answers a registry's Basic or Bearer challenge for the given repository scopes; caches the header."""

    def __init__(
        self, registry: str, credentials: Credentials | None, scopes: Iterable[str] = (), *, verify: bool = True
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self.scopes = list(dict.fromkeys(scopes))
        self.verify = verify
        self._header: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the cached header; on 401 answer the challenge once and retry."""
        if self._header:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.credentials is None or not (self.credentials.username or self.credentials.password):
                return
            header = _basic(self.credentials)
        elif scheme == "bearer":
            header = "Bearer " + self._fetch_token(params)
        else:
            return
        if header == self._header:
            return  # the same credentials were refused already: let the caller report the 401
        self._header = header
        request.headers["Authorization"] = header
        yield request

    def _fetch_token(self, params: dict[str, str]) -> str:
        """A token from the challenge's realm for our scopes (a refresh-token POST or a GET with basic auth)."""
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry}: Bearer challenge without a realm")
        scopes = list(self.scopes)
        if params.get("scope") and params["scope"] not in scopes:
            scopes.append(params["scope"])
        query: list[tuple[str, str]] = [("service", params["service"])] if params.get("service") else []
        realm_url = httpx.URL(realm)
        where = f"token service {realm_url.scheme}://{realm_url.netloc.decode()}{realm_url.path}"
        creds = self.credentials
        try:
            with httpx.Client(verify=self.verify, timeout=30.0, follow_redirects=True) as client:
                if creds is not None and creds.identity_token:
                    form = dict(query) | {
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "client_id": "gate",
                        "scope": " ".join(scopes),
                    }
                    response = client.post(realm_url, data=form)
                else:
                    query += [("scope", s) for s in scopes]
                    basic = (creds.username, creds.password) if creds is not None and creds.username else None
                    response = client.get(realm_url.copy_merge_params(tuple(query)), auth=basic)
        except httpx.HTTPError as e:
            raise RegistryError(f"registry {self.registry}: {where} unreachable ({type(e).__name__})") from None
        if response.status_code != 200:
            state = "refused the credentials" if creds else "refused anonymous access"
            raise RegistryError(
                f"registry {self.registry}: UNAUTHORIZED: {where} {state} (HTTP {response.status_code})"
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (json.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"registry {self.registry}: {where} answered without a token")
        logger.debug("token for %s from %s for %s", self.registry, where, " ".join(scopes))
        return token


__all__ = [
    "Credentials",
    "RegistryAuth",
    "docker_config_path",
    "load_credentials",
    "parse_challenge",
    "run_credential_helper",
]
