"""Cut the operations gate's pull-request client uses out of a provider's OpenAPI description.

    python tests/data/openapi/extract.py github api.github.com.json > tests/data/openapi/github-pulls.json

The whole descriptions are megabytes; the stand-in (tests/promote/openapi_standin.py) needs only these
operations and every component they reference, transitively, kept byte-for-byte as published.
"""

from __future__ import annotations

import json
import sys
from typing import Any

OPERATIONS = {
    "github": {
        "/repos/{owner}/{repo}/pulls": ("get", "post"),
        "/repos/{owner}/{repo}/pulls/{pull_number}": ("patch",),
        "/repos/{owner}/{repo}/issues/{issue_number}/labels": ("post",),
    },
}


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def extract(document: dict[str, Any], provider: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS[provider].items():
        item = document["paths"][path]
        paths[path] = {m: item[m] for m in methods} | ({"parameters": item["parameters"]} if "parameters" in item else {})
    out: dict[str, Any] = {k: document[k] for k in ("openapi", "info", "servers") if k in document}
    out["paths"] = paths
    seen: set[str] = set()
    todo = _refs(paths)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        node = _resolve(document, ref)
        target: Any = out
        parts = ref.removeprefix("#/").split("/")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
        todo |= _refs(node) - seen
    return out


if __name__ == "__main__":
    provider, source = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        json.dump(extract(json.load(f), provider), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
