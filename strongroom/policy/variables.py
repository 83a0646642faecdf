"""Policy variables: ``${aws:username}``, ``${aws:PrincipalTag/team, 'none'}``, ``${*}``.

Rules ("IAM policy elements: Variables and tags", IAM User Guide):

- Variables exist only in policies whose ``Version`` is 2012-10-17; in a 2008-10-17
  policy, or one without ``Version``, ``${...}`` is plain text. Callers decide that and
  pass ``variables=False`` to :func:`tokenize`.
- A variable names a request-context key (case-insensitively). A key with one value
  substitutes that value; a key that is missing, empty or multivalued has no value as a
  variable, and then the default given as ``${key, 'default'}`` is used. Without a
  default the value that holds the variable is null ("Policy variables with no value",
  IAM User Guide) in that one place, not the whole statement: :meth:`Template.render`
  answers None, and the caller treats that one value as matching nothing. So a positive
  operator (``StringEquals``) does not match it, a negated one (``StringNotEquals``)
  does, the other values of the same key still count, a ``Resource`` pattern with it
  matches no resource and a ``NotResource`` pattern with it excludes none.
- ``${*}``, ``${?}`` and ``${$}`` stand for the literal characters, so a pattern can
  match a real asterisk or question mark.
- A substituted value is always literal text: a tag value of ``*`` matches an asterisk,
  never everything.

Templates are compiled once per policy; only the variable parts are looked up per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

ContextKeys = Mapping[str, tuple[str, ...]]
"""Request-context keys, lower-cased, to their values (never an empty tuple)."""

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_REFERENCE = re.compile(r"\s*([^\s,']+)\s*(?:,\s*'([^']*)'\s*)?")
_ESCAPES = frozenset("*?$")


@dataclass(frozen=True, slots=True)
class Variable:
    """``${key}`` or ``${key, 'default'}``; ``key`` is lower-cased."""

    key: str
    default: str | None
    source: str  # the text as written, for places where variables are not substituted


@dataclass(frozen=True, slots=True)
class Escaped:
    """``${*}``, ``${?}`` or ``${$}``: one literal character."""

    char: str


Token = str | Variable | Escaped


def tokenize(text: str, *, variables: bool) -> tuple[Token, ...]:
    """Split ``text`` into literal text, variables and escapes.

    With ``variables=False`` the whole text is one literal token. Text that looks like a
    variable but is not well formed (``${a b}``) stays literal.
    """
    if not variables or "${" not in text:
        return (text,) if text else ()
    tokens: list[Token] = []
    position = 0
    for found in _VARIABLE.finditer(text):
        if found.start() > position:
            tokens.append(text[position : found.start()])
        inner = found.group(1)
        reference = _REFERENCE.fullmatch(inner)
        if inner in _ESCAPES:
            tokens.append(Escaped(inner))
        elif reference is not None:
            tokens.append(Variable(reference.group(1).lower(), reference.group(2), found.group(0)))
        else:
            tokens.append(found.group(0))
        position = found.end()
    if position < len(text):
        tokens.append(text[position:])
    return tuple(tokens)


def resolve(variable: Variable, keys: ContextKeys) -> str | None:
    """The value ``variable`` stands for in this request, or None if it has none."""
    values = keys.get(variable.key)
    if values is not None and len(values) == 1:
        return values[0]
    return variable.default


Piece = str | Variable
"""A compiled fragment: text in the template's own syntax, or a variable to fill in."""


@dataclass(frozen=True, slots=True)
class Template:
    """A condition value or ARN pattern with its variables left open.

    ``pieces`` alternate fixed text (already converted to the target syntax: plain text
    or a regular expression) and variables. ``static`` is the complete text when there
    are no variables.
    """

    pieces: tuple[Piece, ...]
    static: str | None

    @classmethod
    def build(cls, pieces: list[Piece]) -> Template:
        merged: list[Piece] = []
        for piece in pieces:
            if isinstance(piece, str) and merged and isinstance(merged[-1], str):
                merged[-1] += piece
            elif piece != "":
                merged.append(piece)
        variables = [piece for piece in merged if isinstance(piece, Variable)]
        static = None if variables else "".join(p for p in merged if isinstance(p, str))
        return cls(tuple(merged), static)

    def render(self, keys: ContextKeys, quote: Callable[[str], str]) -> str | None:
        """Fill in the variables, each passed through ``quote``; None (a null value, which
        matches nothing) if one has no value."""
        if self.static is not None:
            return self.static
        parts: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                parts.append(piece)
                continue
            value = resolve(piece, keys)
            if value is None:
                return None
            parts.append(quote(value))
        return "".join(parts)


def text_template(text: str, *, variables: bool) -> Template:
    """A value compared as plain text (StringEquals, Bool): ``*`` and ``?`` are literal."""
    pieces: list[Piece] = []
    for token in tokenize(text, variables=variables):
        if isinstance(token, Escaped):
            pieces.append(token.char)
        else:
            pieces.append(token)
    return Template.build(pieces)


def wildcard_regex(text: str, *, star: str = ".*", one: str = ".") -> str:
    """``text`` as a regular expression in which ``*`` and ``?`` are wildcards."""
    return re.escape(text).replace(r"\*", star).replace(r"\?", one)


def like_template(text: str, *, variables: bool) -> Template:
    """A StringLike value as a regular expression: ``*`` and ``?`` are wildcards."""
    pieces: list[Piece] = []
    for token in tokenize(text, variables=variables):
        if isinstance(token, str):
            pieces.append(wildcard_regex(token))
        elif isinstance(token, Escaped):
            pieces.append(re.escape(token.char))
        else:
            pieces.append(token)
    return Template.build(pieces)


def arn_template(text: str, *, variables: bool, resource_part_only: bool) -> Template:
    """An ARN pattern as a regular expression, matched segment by segment.

    An ARN has six colon-separated segments (``arn:partition:service:region:account:
    resource``). Wildcards in the first five stay within their segment; in the last
    segment, which may itself contain colons and slashes, they match anything. A
    pattern with fewer segments treats its last one the same way, so ``*`` alone
    matches every ARN.

    ``resource_part_only`` keeps variables before the fifth colon literal, as the
    Resource element requires; condition values substitute them anywhere.
    """
    tokens = tokenize(text, variables=variables)
    colons = sum(token.count(":") for token in tokens if isinstance(token, str))
    last = min(colons, 5)
    segment = 0
    pieces: list[Piece] = []
    for token in tokens:
        if isinstance(token, Escaped):
            pieces.append(re.escape(token.char))
        elif isinstance(token, Variable):
            if resource_part_only and segment < last:
                pieces.append(re.escape(token.source))
            else:
                pieces.append(token)
        else:
            for index, part in enumerate(token.split(":")):
                if index:
                    pieces.append(":")
                    segment += 1
                if segment >= last:
                    pieces.append(wildcard_regex(part))
                else:
                    pieces.append(wildcard_regex(part, star="[^:]*", one="[^:]"))
    return Template.build(pieces)
