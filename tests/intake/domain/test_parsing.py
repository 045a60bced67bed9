"""Body parsing: the three media types, and every refusal with its status."""

from __future__ import annotations

import pytest

from services.intake.domain.errors import BodyTooLarge, MalformedBody, UnsupportedMediaType
from services.intake.domain.parsing import parse_body


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ123") -> bytes:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_json_object() -> None:
    body = b'{"email": "a@b.com", "nested": {"x": [1, 2]}}'
    assert parse_body("application/json; charset=utf-8", body) == {
        "email": "a@b.com",
        "nested": {"x": [1, 2]},
    }


def test_json_structured_suffix_is_json() -> None:
    assert parse_body("application/vnd.chat+json", b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_top_level_must_be_object(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="object"):
        parse_body("application/json", body)


@pytest.mark.parametrize("body", [b"{", b"", b'{"a": "\xff"}', b"{'a': 1}"])
def test_json_invalid_or_not_utf8(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_body("application/json", body)
    assert info.value.status == 400


def test_json_nesting_limit() -> None:
    ok = b'{"a":' * 19 + b"1" + b"}" * 19  # depth 19 objects + leaf
    assert parse_body("application/json", ok, max_depth=20)
    deep = b'{"a":' * 21 + b"1" + b"}" * 21
    with pytest.raises(MalformedBody, match="deeper"):
        parse_body("application/json", deep, max_depth=20)
    lists = b'{"a":' + b"[" * 25 + b"]" * 25 + b"}"
    with pytest.raises(MalformedBody, match="deeper"):
        parse_body("application/json", lists, max_depth=20)


def test_body_over_limit_is_413_even_for_unknown_type() -> None:
    with pytest.raises(BodyTooLarge) as info:
        parse_body("application/json", b"{" + b" " * 100 + b"}", max_bytes=50)
    assert info.value.status == 413
    assert parse_body("application/json", b'{"a":"' + b"x" * 40 + b'"}', max_bytes=50)


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/xml", "multipart/mixed"])
def test_unsupported_media_type(ctype: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_body(ctype, b"{}")
    assert info.value.status == 415


def test_urlencoded_with_repeated_keys_and_unicode() -> None:
    body = b"email=jane%40acme.com&first_name=J%C3%BCrgen&interest=a&interest=b&empty="
    assert parse_body("application/x-www-form-urlencoded", body) == {
        "email": "jane@acme.com",
        "first_name": "Jürgen",
        "interest": ["a", "b"],
        "empty": "",
    }


def test_urlencoded_plus_is_space() -> None:
    assert parse_body("application/x-www-form-urlencoded", b"msg=hi+there") == {"msg": "hi there"}


def test_urlencoded_invalid_utf8() -> None:
    with pytest.raises(MalformedBody):
        parse_body("application/x-www-form-urlencoded", b"name=%FF%FE")
    with pytest.raises(MalformedBody):
        parse_body("application/x-www-form-urlencoded", b"name=\xff")


def test_urlencoded_too_many_fields() -> None:
    body = "&".join(f"f{i}=1" for i in range(1001)).encode()
    with pytest.raises(MalformedBody):
        parse_body("application/x-www-form-urlencoded", body, max_bytes=100_000)


def test_multipart_text_fields_files_ignored_and_repeats() -> None:
    body = multipart(
        [
            ("email", None, b"jane@acme.com"),
            ("cv", "cv.pdf", b"%PDF-1.4 binary \x00\xff"),
            ("topic", None, "Größe".encode()),
            ("topic", None, b"pricing"),
        ]
    )
    result = parse_body("multipart/form-data; boundary=XyZ123", body)
    assert result == {"email": "jane@acme.com", "topic": ["Größe", "pricing"]}


def test_multipart_without_boundary() -> None:
    with pytest.raises(MalformedBody, match="boundary"):
        parse_body("multipart/form-data", multipart([("a", None, b"1")]))


def test_multipart_truncated() -> None:
    body = multipart([("a", None, b"1"), ("b", None, b"2")])
    with pytest.raises(MalformedBody):
        parse_body("multipart/form-data; boundary=XyZ123", body[:-20])


def test_multipart_wrong_boundary() -> None:
    with pytest.raises(MalformedBody):
        parse_body("multipart/form-data; boundary=other", multipart([("a", None, b"1")]))


def test_multipart_invalid_utf8_value() -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse_body("multipart/form-data; boundary=XyZ123", multipart([("a", None, b"\xff\xfe")]))
