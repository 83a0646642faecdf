"""Rewriting the ``AWS`` principals of a resource policy's text, formatting kept.

AWS binds a resource policy (a role's trust policy, a secret's or a KMS key's policy) to
the *unique id* of each IAM user and role it names, not to its name: a user created
later with a deleted user's name is not the principal the policy named ("AWS JSON policy
elements: Principal", IAM User Guide). Strongroom stores the policy text with each
user or role ARN of a ``Principal``/``NotPrincipal`` ``AWS`` entry replaced by the
entity's id (``AIDA...``/``AROA...``), which the evaluator matches against the caller's
``aws:userid``, and shows it back with the entity's current ARN while it exists
(:class:`strongroom.types.PrincipalIds`, served by IAM).

This module only finds and replaces those strings. It scans the JSON itself, so that
everything else of the text (whitespace, key order, escapes) is stored and shown back
exactly as the client wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

_WHITESPACE = " \t\n\r"
_decoder = json.JSONDecoder()
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_PRINCIPAL_PATHS = {("Statement", "Principal", "AWS"), ("Statement", "NotPrincipal", "AWS")}

# The ARN of an IAM user or role (groups: account, "user" or "role", path, name): what is
# bound to the entity's unique id, in a policy as in a KMS grant.
ENTITY_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):(user|role)(/(?:[^/]+/)*)([^/]+)")

Span = tuple[int, int, str]  # (start, end) of a JSON string token in the text, its value


def principal_strings(text: str) -> list[Span]:
    """Every string of the ``AWS`` entries of a Principal or NotPrincipal element of a
    statement of the policy ``text`` (which must be valid JSON), with where it is."""
    spans: list[Span] = []

    def skip(i: int) -> int:
        while i < len(text) and text[i] in _WHITESPACE:
            i += 1
        return i

    def value(i: int, path: tuple[str, ...]) -> int:
        i = skip(i)
        char = text[i]
        if char == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, i = _scanstring(text, skip(i) + 1)
                i = skip(i)  # at the colon
                i = skip(value(i + 1, (*path, key)))
                if text[i] == "}":
                    return i + 1
                i += 1  # the comma
        if char == "[":
            i = skip(i + 1)
            if text[i] == "]":
                return i + 1
            while True:
                i = skip(value(i, path))
                if text[i] == "]":
                    return i + 1
                i += 1
        if char == '"':
            found, end = _scanstring(text, i + 1)
            if path in _PRINCIPAL_PATHS:
                spans.append((i, end, found))
            return end
        return _decoder.raw_decode(text, i)[1]  # a number, true, false or null

    value(0, ())
    return spans


def rewrite_principals(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each ``AWS`` principal string ``value`` replaced by
    ``replace(value)``; the rest of the text as it is."""
    parts: list[str] = []
    last = 0
    for start, end, found in principal_strings(text):
        new = replace(found)
        if new != found:
            parts.extend((text[last:start], json.dumps(new)))
            last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)
