"""Turn a raw request body into a plain dict, refusing anything we cannot safely read.

The raw bytes are parsed here (not by the web framework) because signatures are computed over
them, and because limits (size, nesting, field count) must hold before any mapping runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import BodyTooLarge, MalformedBody, UnsupportedMediaType

MAX_FORM_FIELDS = 1000
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


def parse_body(
    content_type: str | None, body: bytes, *, max_bytes: int = 65536, max_depth: int = 20
) -> dict[str, Any]:
    """Parse JSON, urlencoded or multipart bodies into a dict (repeated form keys -> list)."""
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body is larger than {max_bytes} bytes")
    media_type, params = _media_type(content_type)
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return _parse_json(body, max_depth)
    if media_type == _FORM:
        return _parse_urlencoded(body)
    if media_type == _MULTIPART:
        return _parse_multipart(body, params.get("boundary"))
    raise UnsupportedMediaType(
        "use application/json, application/x-www-form-urlencoded or multipart/form-data"
    )


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    raw_type, raw_params = parse_options_header(content_type)
    params = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_params.items()}
    return raw_type.decode("latin-1").strip().lower(), params


def _parse_json(body: bytes, max_depth: int) -> dict[str, Any]:
    try:
        data = orjson.loads(body)  # rejects invalid UTF-8 and lone surrogates
    except orjson.JSONDecodeError as exc:
        raise MalformedBody("body is not valid UTF-8 JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("JSON body must be an object at the top level")
    if _depth_exceeds(data, max_depth):
        raise MalformedBody(f"JSON body is nested deeper than {max_depth} levels")
    return data


def _depth_exceeds(root: object, max_depth: int) -> bool:
    """Iterative, so a hostile body cannot exhaust the Python stack."""
    if not isinstance(root, dict | list):
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _add(result: dict[str, Any], key: str, value: str) -> None:
    if key not in result:
        result[key] = value
    elif isinstance(result[key], list):
        result[key].append(value)
    else:
        result[key] = [result[key], value]


def _parse_urlencoded(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody("form body is not valid UTF-8 urlencoded data") from exc
    result: dict[str, Any] = {}
    for key, value in pairs:
        _add(result, key, value)
    return result


class _MultipartCollector:
    """Collects text parts; file parts (with a filename) are skipped, never stored."""

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.ended = False
        self.parts = 0
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._data: list[bytes] = []

    def on_part_begin(self) -> None:
        self._headers, self._data = {}, []
        self.parts += 1
        if self.parts > MAX_FORM_FIELDS:
            raise MalformedBody(f"multipart body has more than {MAX_FORM_FIELDS} parts")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])

    def on_part_end(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition"))
        if disposition.lower() != b"form-data" or b"name" not in options:
            raise MalformedBody("multipart part lacks a form-data name")
        if b"filename" in options:
            return
        try:
            name = options[b"name"].decode("utf-8")
            value = b"".join(self._data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody("multipart field is not valid UTF-8") from exc
        _add(self.result, name, value)

    def on_end(self) -> None:
        self.ended = True


def _parse_multipart(body: bytes, boundary: str | None) -> dict[str, Any]:
    if not boundary:
        raise MalformedBody("multipart body without a boundary parameter")
    collector = _MultipartCollector()
    try:
        parser = MultipartParser(
            boundary.encode("latin-1"),
            {
                "on_part_begin": collector.on_part_begin,
                "on_part_data": collector.on_part_data,
                "on_part_end": collector.on_part_end,
                "on_header_field": collector.on_header_field,
                "on_header_value": collector.on_header_value,
                "on_header_end": collector.on_header_end,
                "on_end": collector.on_end,
            },
        )
        parser.write(body)
        parser.finalize()
    except (FormParserError, UnicodeEncodeError) as exc:
        raise MalformedBody("multipart body could not be parsed") from exc
    if not collector.ended:
        raise MalformedBody("multipart body ends before its closing boundary")
    return collector.result
