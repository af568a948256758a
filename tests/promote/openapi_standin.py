"""A STAND-IN for GitHub's and GitLab's pull/merge-request REST API — not the real service.

It keeps pull requests (merge requests) in memory and serves only the operations gate calls, but it
checks every request against the provider's published OpenAPI description (the extracts in
tests/data/openapi): the method and path must be an operation of the description, every query
parameter must be one the operation declares and validate against its schema, required parameters
must be there, and a JSON body must validate against the operation's request schema. Its own answers
are validated against the operation's response schema before they are sent, so a test also shows
the client reads the shapes the description promises. Whatever does not validate is answered 400
and listed in ``problems`` (the tests assert it stays empty).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI = Path(__file__).resolve().parents[1] / "data" / "openapi"
_SPEC_URI = "urn:gate-test:openapi"


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 / Swagger 2.0 schema objects as draft-4 JSON Schema: ``nullable: true`` becomes
    ``anyOf [.., null]`` and local ``$ref``s point into the registered description."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_jsonschema(value) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        out["$ref"] = _SPEC_URI + ref
    if out.pop("nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]
    parameters: list[dict[str, Any]]


class Description:
    """One provider's extracted description, with validators for its operations."""

    def __init__(self, path: Path) -> None:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        self.swagger2 = raw.get("swagger") == "2.0"
        self.document = _openapi_to_jsonschema(raw)
        self.registry: Registry[Any] = Registry().with_resource(
            _SPEC_URI, Resource.from_contents(self.document, default_specification=DRAFT4))
        self.operations: list[Operation] = []
        for template, item in self.document["paths"].items():
            shared = item.get("parameters", [])
            pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            for method, spec in item.items():
                if method == "parameters":
                    continue
                parameters = [self.resolve(p) for p in shared + spec.get("parameters", [])]
                self.operations.append(Operation(method.upper(), template, pattern, spec, parameters))

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix(_SPEC_URI + "#/").split("/"):
                target = target[part]
            node = target
        return node

    def validate(self, schema: Any, value: Any) -> list[str]:
        validator = Draft4Validator(schema, registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]

    def undeclared(self, schema: Any, body: Any) -> list[str]:
        """Top-level body fields no variant of the schema declares: most request schemas leave
        additional properties open, but a field the forge does not know is a bug of the client."""
        if not isinstance(body, dict):
            return []
        schema = self.resolve(schema)
        variants = [self.resolve(v) for v in schema.get("oneOf", schema.get("anyOf", [schema]))]
        declared = {name for v in variants for name in v.get("properties", {})}
        return sorted(set(body) - declared) if declared else []

    def param_schema(self, parameter: dict[str, Any]) -> dict[str, Any]:
        if self.swagger2:
            return {k: v for k, v in parameter.items() if k in ("type", "enum", "items", "format", "minimum", "maximum")}
        return dict(parameter.get("schema", {}))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for operation in self.operations:
            match = operation.pattern.match(path)
            if operation.method == method and match:
                return operation, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def request_schema(self, operation: Operation) -> tuple[Any, bool] | None:
        """The JSON body schema and whether a body is required; None: the operation takes none."""
        if self.swagger2:
            for parameter in operation.parameters:
                if parameter.get("in") == "body":
                    return parameter["schema"], bool(parameter.get("required"))
            return None
        body = operation.spec.get("requestBody")
        if body is None:
            return None
        body = self.resolve(body)
        return body["content"]["application/json"]["schema"], bool(body.get("required"))

    def response_schema(self, operation: Operation, status: int) -> Any:
        response = operation.spec.get("responses", {}).get(str(status))
        if response is None:
            return None
        response = self.resolve(response)
        if self.swagger2:
            return response.get("schema")
        return response.get("content", {}).get("application/json", {}).get("schema")


def _convert(value: str, schema: dict[str, Any]) -> Any:
    """A query string value as the parameter's type (what the server would parse)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "boolean":
            return {"true": True, "false": False}.get(value, value)
        if kind == "array":
            return [_convert(v, schema.get("items", {})) for v in value.split(",")]
    except ValueError:
        return value
    return value


@dataclass
class Call:
    """One request the stand-in received (the token is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    operation: str | None


@dataclass
class StandIn:
    """A running stand-in: ``api_url`` is the base gate is given with ``--pr-api-url``."""

    provider: str
    token: str
    description: Description
    api_url: str = ""
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: "METHOD operationId" → status to answer instead (a refusal the test asks for)
    fail: dict[str, int] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls.values() if p["state"] in ("open", "opened")]


def start(provider: str, token: str) -> StandIn:
    """Start the stand-in for ``provider`` (github or gitlab) on a free 127.0.0.1 port."""
    name = "github-pulls.json" if provider == "github" else "gitlab-merge-requests.yaml"
    standin = StandIn(provider, token, Description(OPENAPI / name))
    handler = _github if provider == "github" else _gitlab

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the tests read ``calls``, not a log
            return

        def _serve(self) -> None:
            _handle(self, standin, handler)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.server = server
    prefix = "" if provider == "github" else "/api/v4"
    standin.api_url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return standin


Handler = Callable[[StandIn, Operation, dict[str, str], dict[str, str], Any], tuple[int, Any]]


def _handle(request: BaseHTTPRequestHandler, standin: StandIn, handler: Handler) -> None:
    description = standin.description
    parts = urlsplit(request.path)
    query_pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(query_pairs)
    length = int(request.headers.get("Content-Length") or 0)
    raw = request.rfile.read(length) if length else b""
    body: Any = None
    problems: list[str] = []
    if raw:
        if not (request.headers.get("Content-Type") or "").startswith("application/json"):
            problems.append(f"body sent as {request.headers.get('Content-Type')!r}, not application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            problems.append("body is not JSON")
    found = description.find(request.command, parts.path)
    standin.calls.append(Call(request.command, parts.path, query, body,
                              found[0].spec.get("operationId") if found else None))
    if found is None:
        problems.append(f"{request.command} {parts.path} is no operation of the description")
        return _answer(request, standin, None, 404, {"message": "Not Found"}, problems)
    operation, path_values = found
    declared = {p["name"]: p for p in operation.parameters}
    if len(query_pairs) != len(query):
        problems.append("a query parameter is repeated")
    for name, value in query.items():
        parameter = declared.get(name)
        if parameter is None or parameter.get("in") != "query":
            problems.append(f"query parameter {name!r} is not declared by {operation.spec.get('operationId')}")
            continue
        schema = description.param_schema(parameter)
        problems += [f"query {name}: {p}" for p in description.validate(schema, _convert(value, schema))]
    for name, parameter in declared.items():
        where = parameter.get("in")
        if where == "path":
            schema = description.param_schema(parameter)
            problems += [f"path {name}: {p}" for p in description.validate(schema, _convert(path_values[name], schema))]
        elif where == "query" and parameter.get("required") and name not in query:
            problems.append(f"required query parameter {name!r} is missing")
    expected = description.request_schema(operation)
    if expected is None and raw:
        problems.append(f"{operation.spec.get('operationId')} takes no body")
    elif expected is not None:
        schema, required = expected
        if body is None and required:
            problems.append("the request body is required")
        elif body is not None:
            problems += [f"body {p}" for p in description.validate(schema, body)]
            problems += [f"body field {k!r} is not declared by {operation.spec.get('operationId')}"
                         for k in description.undeclared(schema, body)]
    if problems:
        return _answer(request, standin, None, 400, {"message": "; ".join(problems)}, problems)
    if not _authorized(request, standin):
        message = "Bad credentials" if standin.provider == "github" else "401 Unauthorized"
        return _answer(request, standin, None, 401, {"message": message}, [])
    key = f"{operation.method} {operation.spec.get('operationId')}"
    if key in standin.fail:
        status = standin.fail[key]
        document: dict[str, Any] = {"message": "Validation Failed" if status == 422 else "refused by the stand-in"}
        if standin.provider == "github" and status == 422:
            document |= {"documentation_url": "https://docs.github.com/rest", "errors": [
                {"resource": "PullRequest", "code": "custom", "message": "refused by the test"}]}
        return _answer(request, standin, operation, status, document, [])
    status, answer = handler(standin, operation, path_values, query, body)
    return _answer(request, standin, operation, status, answer, [])


def _authorized(request: BaseHTTPRequestHandler, standin: StandIn) -> bool:
    if standin.provider == "github":
        return request.headers.get("Authorization") == f"Bearer {standin.token}"
    return standin.token in (request.headers.get("PRIVATE-TOKEN"), request.headers.get("JOB-TOKEN"))


def _answer(request: BaseHTTPRequestHandler, standin: StandIn, operation: Operation | None, status: int,
            document: Any, problems: list[str]) -> None:
    standin.problems += problems
    if operation is not None:
        schema = standin.description.response_schema(operation, status)
        if schema is not None:
            wrong = standin.description.validate(schema, document)
            if wrong:  # the stand-in itself broke the description: a test bug, reported loudly
                standin.problems += [f"stand-in answer to {operation.spec.get('operationId')} {status}: {w}" for w in wrong]
    data = json.dumps(document).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


# --- GitHub: the published examples, with this pull request's values -----------------------------

def _example(standin: StandIn, name: str) -> Any:
    return copy.deepcopy(standin.description.document["components"]["examples"][name]["value"])


def _github_pull(standin: StandIn, pull: dict[str, Any], owner: str, repo: str, kind: str) -> dict[str, Any]:
    document: dict[str, Any] = (_example(standin, "pull-request") if kind == "full"
                                else _example(standin, "pull-request-simple-items")[0])
    # the published example predates the schema's required team "type": no requested teams here
    document["requested_teams"] = []
    number = pull["number"]
    html = f"https://github.com/{owner}/{repo}/pull/{number}"
    document |= {"number": number, "title": pull["title"], "body": pull["body"], "state": pull["state"],
                 "html_url": html, "labels": [_github_label(standin, name) for name in pull["labels"]]}
    document["head"]["ref"], document["base"]["ref"] = pull["head"], pull["base"]
    document["head"]["label"], document["base"]["label"] = f"{owner}:{pull['head']}", f"{owner}:{pull['base']}"
    return document


def _github_label(standin: StandIn, name: str) -> dict[str, Any]:
    label: dict[str, Any] = _example(standin, "label-items")[0]
    label |= {"name": name}
    return label


def _github(standin: StandIn, operation: Operation, path: dict[str, str], query: dict[str, str],
            body: Any) -> tuple[int, Any]:
    owner, repo = path["owner"], path["repo"]
    op = operation.spec["operationId"]
    if op == "pulls/list":
        state = query.get("state", "open")
        found = [p for p in standin.pulls.values()
                 if (state == "all" or p["state"] == state)
                 and ("head" not in query or query["head"] == f"{owner}:{p['head']}")
                 and ("base" not in query or query["base"] == p["base"])]
        return 200, [_github_pull(standin, p, owner, repo, "simple") for p in found]
    if op == "pulls/create":
        number = len(standin.pulls) + 1
        standin.pulls[number] = {"number": number, "title": body["title"], "body": body.get("body", ""),
                                 "head": body["head"], "base": body["base"], "state": "open", "labels": []}
        return 201, _github_pull(standin, standin.pulls[number], owner, repo, "full")
    if op == "pulls/update":
        pull = standin.pulls.get(int(path["pull_number"]))
        if pull is None:
            return 404, {"message": "Not Found"}
        pull.update({k: body[k] for k in ("title", "body", "state", "base") if k in body})
        return 200, _github_pull(standin, pull, owner, repo, "full")
    if op == "issues/add-labels":
        pull = standin.pulls.get(int(path["issue_number"]))
        if pull is None:
            return 404, {"message": "Not Found"}
        for label in body["labels"]:
            name = label if isinstance(label, str) else label["name"]
            if name not in pull["labels"]:
                pull["labels"].append(name)
        return 200, [_github_label(standin, name) for name in pull["labels"]]
    return 404, {"message": "Not Found"}


# --- GitLab --------------------------------------------------------------------------------------

def _gitlab_merge(merge: dict[str, Any], project: str) -> dict[str, Any]:
    iid = merge["iid"]
    return {"id": 1000 + iid, "iid": iid, "project_id": 7, "title": merge["title"],
            "description": merge["description"], "state": merge["state"],
            "created_at": "2026-12-07T08:00:00.000Z", "updated_at": "2026-12-07T08:00:00.000Z",
            "source_branch": merge["source_branch"], "target_branch": merge["target_branch"],
            # the published entity types labels as a string (the service sends a list): the stand-in
            # answers what the description says, and gate reads no labels from answers
            "labels": ",".join(merge["labels"]),
            "web_url": f"https://gitlab.example.com/{project}/-/merge_requests/{iid}"}


def _gitlab(standin: StandIn, operation: Operation, path: dict[str, str], query: dict[str, str],
            body: Any) -> tuple[int, Any]:
    project = path["id"]
    op = operation.spec["operationId"]
    if op == "getApiV4ProjectsIdMergeRequests":
        state = query.get("state", "all")
        found = [m for m in standin.pulls.values()
                 if (state == "all" or m["state"] == state)
                 and query.get("source_branch", m["source_branch"]) == m["source_branch"]
                 and query.get("target_branch", m["target_branch"]) == m["target_branch"]]
        return 200, [_gitlab_merge(m, project) for m in found]
    if op == "postApiV4ProjectsIdMergeRequests":
        iid = len(standin.pulls) + 1
        standin.pulls[iid] = {"iid": iid, "title": body["title"], "description": body.get("description", ""),
                              "source_branch": body["source_branch"], "target_branch": body["target_branch"],
                              "state": "opened", "labels": list(body.get("labels", []))}
        return 201, _gitlab_merge(standin.pulls[iid], project)
    if op == "putApiV4ProjectsIdMergeRequestsMergeRequestIid":
        merge = standin.pulls.get(int(path["merge_request_iid"]))
        if merge is None:
            return 404, {"message": "404 Not found"}
        merge.update({k: body[k] for k in ("title", "description", "target_branch") if k in body})
        if "labels" in body:
            merge["labels"] = list(body["labels"])
        merge["labels"] += [name for name in body.get("add_labels", []) if name not in merge["labels"]]
        return 200, _gitlab_merge(merge, project)
    return 404, {"message": "404 Not found"}
