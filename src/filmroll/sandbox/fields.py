"""The Graph ``fields`` expression: ``id,caption,children.limit(5){id,media_url}``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG = re.compile(r"[^()]*")
MAX_DEPTH = 3


class FieldSyntaxError(ValueError):
    pass


@dataclass(slots=True)
class FieldSpec:
    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    subfields: list[FieldSpec] | None = None


@functools.lru_cache(maxsize=1024)
def parse_fields(text: str) -> list[FieldSpec]:
    """Parse once per distinct expression; callers treat the result as read-only."""
    specs, position = _parse_list(text, 0, 0)
    if position != len(text):
        raise FieldSyntaxError(_syntax(text, position, "end of string"))
    return specs


def _syntax(text: str, position: int, expected: str) -> str:
    found = text[position] if position < len(text) else "end of string"
    return f'Syntax error "Expected {expected} instead of "{found}"." at character {position}: {text[:200]}'


def _parse_list(text: str, position: int, depth: int) -> tuple[list[FieldSpec], int]:
    if depth > MAX_DEPTH:
        raise FieldSyntaxError(_syntax(text, position, "a shallower field expansion"))
    specs: dict[str, FieldSpec] = {}
    while True:
        while position < len(text) and text[position] == " ":
            position += 1
        match = _NAME.match(text, position)
        if match is None:
            raise FieldSyntaxError(_syntax(text, position, "field name"))
        spec = FieldSpec(match.group())
        position = match.end()
        while position < len(text) and text[position] == ".":
            modifier = _NAME.match(text, position + 1)
            if modifier is None or not text.startswith("(", modifier.end()):
                raise FieldSyntaxError(_syntax(text, position + 1, "modifier"))
            argument = _ARG.match(text, modifier.end() + 1)
            assert argument is not None
            end = argument.end()
            if not text.startswith(")", end):
                raise FieldSyntaxError(_syntax(text, end, '")"'))
            spec.modifiers[modifier.group()] = argument.group()
            position = end + 1
        if text.startswith("{", position):
            spec.subfields, position = _parse_list(text, position + 1, depth + 1)
            if not text.startswith("}", position):
                raise FieldSyntaxError(_syntax(text, position, '"}"'))
            position += 1
        specs.setdefault(spec.name, spec)  # Graph ignores a repeated field
        while position < len(text) and text[position] == " ":
            position += 1
        if not text.startswith(",", position):
            return list(specs.values()), position
        position += 1
