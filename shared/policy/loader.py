"""Loading: strict YAML, error messages that name the field, the content hash."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from shared.policy.base import PolicyError
from shared.policy.conditions import _TAG_SEGMENTS
from shared.policy.model import Policy

# --- loading ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans only (so country NO stays "NO") and duplicate keys are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                mark = key_node.start_mark
                raise PolicyError([f"line {mark.line + 1}: duplicate key '{key}'"])
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "field required",
}


def _format_loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _TAG_SEGMENTS:
            out += f".{part}" if out else part
    return out


def _format_error(err: Mapping[str, Any]) -> str:
    loc = list(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "policy_field":
        loc.append(ctx["subpath"])
        message = str(ctx["detail"])
    elif kind == "extra_forbidden" and loc and loc[-1] == "secret":
        message = "secrets are never inline: use secret_env or secret_file"
    elif kind == "too_short":
        message = f"needs at least {ctx.get('min_length', 1)} item(s)"
    else:
        message = _MESSAGES.get(kind, str(err["msg"]).removeprefix("Value error, "))
    path = _format_loc(loc)
    # a policy_field subpath may itself hold "[i]" (e.g. "stages[1].min_score")
    path = path.replace(".[", "[")
    return f"{path}: {message}" if path else message


def _specific(errors: list[Any]) -> list[Any]:
    """Drop "too short" errors that only exist because every item of the list was invalid."""
    locs = [tuple(e["loc"]) for e in errors]

    def shadowed(loc: tuple[Any, ...]) -> bool:
        return any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)

    return [e for e in errors if not (e["type"] == "too_short" and shadowed(tuple(e["loc"])))]


def parse_policy(text: str, *, content: bytes | None = None) -> Policy:
    """Validate policy YAML; ``content`` (the file's bytes) is what gets hashed, if given."""
    raw_bytes = content if content is not None else text.encode("utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise PolicyError([f"{where}invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"invalid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PolicyError(["policy: the file must be a YAML mapping"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError([_format_error(e) for e in _specific(exc.errors())]) from None
    policy._content_hash = hashlib.sha256(raw_bytes).hexdigest()
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file; any problem raises PolicyError naming the field."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError([f"cannot read policy file {path}: {exc.strerror}"]) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(["policy: the file is not UTF-8"]) from None
    return parse_policy(text, content=content)
