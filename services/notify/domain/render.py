"""E-mail text and HTML from the Jinja2 templates in services/notify/templates/.

HTML templates (`*.html.j2`) autoescape, so a lead's name or message can never inject markup
into a rep's mail client; text templates do not (plain text has nothing to escape). Undefined
variables are errors, so a template typo fails the first test instead of mailing a blank.
Subjects written in the policy render in a sandbox: the policy is trusted, but a subject is
one line of text, never code.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _html(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=_html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.cache
def _subject_env() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)


def render_mail(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(text, html) of `<template>.txt.j2` and `<template>.html.j2`."""
    env = _env()
    text = env.get_template(f"{template}.txt.j2").render(context)
    html = env.get_template(f"{template}.html.j2").render(context)
    return text, html


def render_subject(source: str, context: dict[str, Any]) -> str:
    """A policy-written subject line: rendered, on one line, at most 200 characters."""
    out = _subject_env().from_string(source).render(context)
    return " ".join(out.split())[:200]


def missing_templates(names: dict[str, str]) -> list[str]:
    """`{field path: template name}` -> one error per template without both files.

    Notify checks the policy's acknowledgement templates with this at start-up and on reload
    (the policy loader cannot: shared/ does not know where notify keeps its templates)."""
    errors = []
    for path, name in names.items():
        for suffix in (".txt.j2", ".html.j2"):
            if not (TEMPLATES / f"{name}{suffix}").is_file():
                errors.append(f"{path}: no template '{name}' ({name}{suffix} in {TEMPLATES})")
                break
    return errors
