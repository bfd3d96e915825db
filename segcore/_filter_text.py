"""The Business Central text form of a filter: `FIELD=EXPRESSION`, one condition a line.

Built like sqlglot: a tokenizer turns an expression into tokens, a recursive-descent parser turns the tokens into
tree nodes for that one field, and the conditions of all lines are ANDed. Lines on `interactions.F` or `profile.F`
together form one related-record condition (one record must satisfy them all), as a Business Central filter tab
does. `to_text` goes the other way when the tree has a text form.

Grammar of an expression (`&` binds tighter than `|`, as AND binds tighter than OR):

    expr  := and ('|' and)*
    and   := unary ('&' unary)*
    unary := '(' expr ')' | term
    term  := '<>' value | '<' value | '<=' value | '>' value | '>=' value
           | value '..' value | '..' value | value '..' | value
    value := one or more adjacent WORD / 'QUOTED' pieces; '' alone is the empty value

A WORD runs up to white space or one of `|&()<>'` or `..`; so `-`, `+`, `.`, `@` inside a value are plain characters
(`age_band=25-34`, `today-90d`, `*@contoso.com`). `@` at the start of a term is Business Central's case-insensitive
marker and is ignored (matching is always case-insensitive). Quotes make every character literal, `''` inside quotes
is one quote. White space inside a value is kept, around it dropped.

Positions in error messages count the characters before the fault in that condition's text, as in SPEC §2:
`age=25..x: position 8: 'x' is not a number`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import FilterError, FilterSyntaxError
from ._filter_tree import (
    EMPTY,
    Condition,
    Group,
    Node,
    Not,
    Related,
    kind_of,
    unknown_field_error,
    validate,
    validate_condition,
)
from .fields import AGE_BANDS, BUILTIN, RELATIONS, FieldRegistry, FieldSpec

__all__ = ["parse_text", "to_text"]

MAX_TEXT = 200_000

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_SPECIAL = set("|&()<>'")
_BAND_LABELS = {label for label, _, _ in AGE_BANDS}
_COMPARE = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


# ------------------------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    """One lexical unit; `pos` is its offset in the condition's text."""

    kind: str  # WORD QUOTED WS OR AND LPAREN RPAREN DOTDOT NE LT LE GT GE EOF
    text: str
    pos: int


_OPERATORS = (("..", "DOTDOT"), ("<>", "NE"), ("<=", "LE"), (">=", "GE"), ("<", "LT"), (">", "GT"))
_SINGLE = {"|": "OR", "&": "AND", "(": "LPAREN", ")": "RPAREN"}
# After these a new term starts, where a leading '@' is the case-insensitive marker.
_TERM_START = {"OR", "AND", "LPAREN", "DOTDOT", "NE", "LT", "LE", "GT", "GE"}


def tokenize(expr: str, offset: int, line: str) -> list[Token]:
    """The tokens of one expression; `offset` is where it starts in `line` (for positions)."""
    tokens: list[Token] = []
    i, n = 0, len(expr)
    term_start = True
    while i < n:
        c = expr[i]
        start = offset + i
        if c.isspace():
            j = i
            while j < n and expr[j].isspace():
                j += 1
            tokens.append(Token("WS", expr[i:j], start))
            i = j
            continue
        if c == "'":
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise FilterSyntaxError(
                        "a quote ' is not closed (inside quotes, write '' for one quote)",
                        text=line,
                        position=start,
                    )
                if expr[j] == "'":
                    if j + 1 < n and expr[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(expr[j])
                j += 1
            tokens.append(Token("QUOTED", "".join(chars), start))
            i = j + 1
            term_start = False
            continue
        if c in _SINGLE:
            kind = _SINGLE[c]
            tokens.append(Token(kind, c, start))
            i += 1
            term_start = kind != "RPAREN"
            continue
        op = next(((s, k) for s, k in _OPERATORS if expr.startswith(s, i)), None)
        if op is not None:
            tokens.append(Token(op[1], op[0], start))
            i += len(op[0])
            term_start = True
            continue
        if c == "@" and term_start:
            i += 1  # Business Central's case-insensitive marker: we always are
            continue
        j = i
        while j < n and not expr[j].isspace() and expr[j] not in _SPECIAL and not expr.startswith("..", j):
            j += 1
        tokens.append(Token("WORD", expr[i:j], start))
        i = j
        term_start = False
    tokens.append(Token("EOF", "", offset + n))
    return tokens


# ---------------------------------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _Value:
    """A value as written: its pieces (text, quoted?) and where it starts."""

    pieces: tuple[tuple[str, bool], ...]
    pos: int

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.pieces)

    @property
    def is_empty_quote(self) -> bool:
        return self.pieces == (("", True),)

    @property
    def has_wildcards(self) -> bool:
        return any(not quoted and ("*" in t or "?" in t) for t, quoted in self.pieces)

    def shown(self) -> str:
        text = self.text
        return f"'{text}'" if len(text) <= 40 else f"'{text[:37]}...'"


class _Parser:
    """Recursive descent over one condition's tokens, building nodes on one field."""

    def __init__(
        self,
        line: str,
        tokens: list[Token],
        spec: FieldSpec,
        field: str,
        relation: str | None,
        fields: FieldRegistry = BUILTIN,
    ) -> None:
        self.fields = fields
        self.line = line
        self.tokens = tokens
        self.i = 0
        self.spec = spec
        self.field = field
        self.relation = relation

    # -- token helpers

    def error(self, message: str, pos: int) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=self.line, position=pos)

    def skip_ws(self) -> None:
        while self.tokens[self.i].kind == "WS":
            self.i += 1

    def peek(self) -> Token:
        self.skip_ws()
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    # -- grammar

    def parse(self) -> Node:
        first = self.peek()
        if first.kind == "EOF":
            raise self.error("there is no value after '='", first.pos)
        node = self.parse_or(None)
        tok = self.peek()
        if tok.kind == "RPAREN":
            raise self.error("')' closes a parenthesis that was never opened", tok.pos)
        if tok.kind != "EOF":
            raise self.error(f"unexpected {tok.text!r}: join values with | (or) or & (and)", tok.pos)
        return node

    def parse_or(self, opened: Token | None) -> Node:
        parts = [self.parse_and(None, opened)]
        while self.peek().kind == "OR":
            op = self.advance()
            parts.append(self.parse_and(op, opened))
        return _combine("any", parts, self.spec)

    def parse_and(self, after: Token | None, opened: Token | None) -> Node:
        parts = [self.parse_unary(after, opened)]
        while self.peek().kind == "AND":
            op = self.advance()
            parts.append(self.parse_unary(op, opened))
        return _combine("all", parts, self.spec)

    def parse_unary(self, after: Token | None, opened: Token | None) -> Node:
        tok = self.peek()
        if tok.kind == "LPAREN":
            self.advance()
            if self.peek().kind == "RPAREN":
                raise self.error("empty parentheses", tok.pos)
            node = self.parse_or(tok)
            close = self.peek()
            if close.kind != "RPAREN":
                raise self.error("a parenthesis is not closed", tok.pos)
            self.advance()
            return node
        return self.parse_term(after, opened)

    def missing_value(self, after: Token | None, opened: Token | None) -> FilterSyntaxError:
        tok = self.peek()
        if after is not None:
            return self.error(f"{after.text!r} is not followed by a value", after.pos)
        if tok.kind in ("OR", "AND"):
            return self.error(f"{tok.text!r} has no value before it", tok.pos)
        if tok.kind == "RPAREN" and opened is None:
            return self.error("')' closes a parenthesis that was never opened", tok.pos)
        if tok.kind == "EOF" and opened is not None:
            return self.error("a parenthesis is not closed", opened.pos)
        return self.error(f"expected a value, found {tok.text or 'the end'!r}", tok.pos)

    def read_value(self) -> _Value | None:
        self.skip_ws()
        start = self.i
        pieces: list[tuple[str, bool]] = []
        last = start
        j = start
        while self.tokens[j].kind in ("WORD", "QUOTED", "WS"):
            tok = self.tokens[j]
            text = tok.text
            if (
                tok.kind == "QUOTED"
                and text == ""
                and (j > start or self.tokens[j + 1].kind in ("WORD", "QUOTED"))
            ):
                text = "'"  # O''Brien: outside quotes, '' inside a value is one quote
            pieces.append((text, tok.kind == "QUOTED"))
            if tok.kind != "WS":
                last = j + 1
            j += 1
        if last == start:
            return None
        # Trailing white space is not part of the value.
        pieces = pieces[: last - start]
        self.i = last
        return _Value(tuple(pieces), self.tokens[start].pos)

    def parse_term(self, after: Token | None, opened: Token | None) -> Node:
        tok = self.peek()
        if tok.kind in ("NE", "LT", "LE", "GT", "GE"):
            self.advance()
            value = self.read_value()
            if value is None:
                raise self.missing_value(tok, opened)
            if tok.kind == "NE":
                return self.not_equal(value, tok)
            # '<18' is an age band, not a comparison: age bands take no '<' anyway.
            if self.spec.name == "age_band" and tok.kind == "LT" and "<" + value.text.strip() in _BAND_LABELS:
                return self.build(Condition(self.field, "eq", "<" + value.text.strip()), tok.pos)
            self.require_ordered(tok)
            return self.build(Condition(self.field, _COMPARE[tok.text], self.scalar(value)), value.pos)
        if tok.kind == "DOTDOT":
            self.advance()
            self.require_ordered(tok)
            value = self.read_value()
            if value is None:
                raise self.missing_value(tok, opened)
            return self.build(Condition(self.field, "le", self.scalar(value)), value.pos)
        value = self.read_value()
        if value is None:
            raise self.missing_value(after, opened)
        if self.peek().kind == "DOTDOT":
            dots = self.advance()
            self.require_ordered(dots)
            lo = self.scalar(value)
            high = self.read_value()
            if high is None:
                return self.build(Condition(self.field, "ge", lo), value.pos)
            return self.build(Condition(self.field, "between", (lo, self.scalar(high))), value.pos)
        return self.equal(value)

    # -- building conditions

    def build(self, cond: Condition, pos: int) -> Condition:
        try:
            return validate_condition(cond, self.relation, self.fields)
        except FilterSyntaxError:
            raise
        except FilterError as exc:
            raise self.error(exc.message, pos) from None

    def require_ordered(self, tok: Token) -> None:
        if self.spec.type not in ("number", "date"):
            what = "ranges" if tok.kind == "DOTDOT" else "comparisons"
            raise self.error(
                f"{tok.text!r} {what} fit numbers and dates; {self.spec.label} is {kind_of(self.spec)}",
                tok.pos,
            )

    def scalar(self, value: _Value) -> Any:
        """A number or date value, checked here so that the error points at it."""
        if value.is_empty_quote:
            raise self.error("'' (empty) cannot be compared; write '' alone to find empty values", value.pos)
        text = value.text.strip()
        number: Any = text
        if self.spec.type == "number":
            if not _NUMBER.fullmatch(text):
                raise self.error(f"{value.shown()} is not a number", value.pos)
            number = int(text) if _INTEGER.fullmatch(text) else float(text)
        # Checked alone (date format, whole numbers, bounds) so that the error points at this value.
        return self.build(Condition(self.field, "eq", number), value.pos).value

    def boolean(self, value: _Value) -> bool:
        text = value.text.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.error(
            f"{value.shown()} is not true or false (write true, false, yes, no, 1 or 0)", value.pos
        )

    def empty_test(self, value: _Value, negated: bool) -> Node:
        if self.spec.type in ("list", "boolean"):
            raise self.error(f"'' (empty) does not fit {self.spec.label}, {kind_of(self.spec)}", value.pos)
        return self.build(Condition(self.field, "is_not_empty" if negated else "is_empty"), value.pos)

    def equal(self, value: _Value) -> Node:
        spec = self.spec
        if value.is_empty_quote:
            return self.empty_test(value, negated=False)
        if spec.type == "boolean":
            return self.build(
                Condition(self.field, "is_true" if self.boolean(value) else "is_false"), value.pos
            )
        if spec.type == "list":
            if value.has_wildcards:
                raise self.error(f"wildcards do not fit {spec.label}, {kind_of(spec)}", value.pos)
            return self.build(Condition(self.field, "has_any", (value.text.strip(),)), value.pos)
        if spec.type in ("number", "date"):
            return self.build(Condition(self.field, "eq", self.scalar(value)), value.pos)
        if value.has_wildcards:
            return self.build(self.pattern(value), value.pos)
        return self.build(Condition(self.field, "eq", self.plain(value)), value.pos)

    def not_equal(self, value: _Value, tok: Token) -> Node:
        spec = self.spec
        if value.is_empty_quote:
            return self.empty_test(value, negated=True)
        if spec.type == "boolean":
            return self.build(
                Condition(self.field, "is_false" if self.boolean(value) else "is_true"), value.pos
            )
        if spec.type == "list":
            if value.has_wildcards:
                raise self.error(f"wildcards do not fit {spec.label}, {kind_of(spec)}", value.pos)
            return self.build(Condition(self.field, "has_none", (value.text.strip(),)), value.pos)
        if spec.type in ("number", "date"):
            return self.build(Condition(self.field, "ne", self.scalar(value)), value.pos)
        if value.has_wildcards:
            return Not(self.build(self.pattern(value), value.pos))
        return self.build(Condition(self.field, "ne", self.plain(value)), value.pos)

    @staticmethod
    def plain(value: _Value) -> str:
        # Unquoted white space around a value never reaches here: the tokenizer keeps it out of the pieces.
        return value.text

    def pattern(self, value: _Value) -> Condition:
        """contains / starts_with / ends_with for the simple shapes, matches for the rest."""
        atoms: list[tuple[str, bool]] = []  # (char, is_wildcard)
        for text, quoted in value.pieces:
            atoms.extend((ch, not quoted and ch in "*?") for ch in text)
        lit_start = 1 if atoms and atoms[0] == ("*", True) else 0
        lit_end = len(atoms) - 1 if len(atoms) > 1 and atoms[-1] == ("*", True) else len(atoms)
        middle = atoms[lit_start:lit_end]
        literal = "".join(ch for ch, _ in middle)
        if middle and not any(w for _, w in middle):
            if lit_start and lit_end < len(atoms):
                return Condition(self.field, "contains", literal)
            if lit_start:
                return Condition(self.field, "ends_with", literal)
            if lit_end < len(atoms):
                return Condition(self.field, "starts_with", literal)
        if any(not w and ch in "*?" for ch, w in atoms):
            raise self.error("a quoted * or ? cannot be mixed with wildcards in this pattern", value.pos)
        return Condition(self.field, "matches", "".join(ch for ch, _ in atoms))


# ----------------------------------------------------------------------------------------------- combining


# Within one expression every condition is on the same field, so plain values can be gathered into one list
# condition: `A|B` on a text field is one `in`, `A&B` on a list field one `has_all`, `<>A&<>B` one `not_in`.
_GATHER = {
    "any": {"eq": "in", "in": "in", "has_any": "has_any"},
    "all": {"ne": "not_in", "not_in": "not_in", "has_none": "has_none", "has_all": "has_all"},
}
_SINGLE_OP = {"in": "eq", "not_in": "ne", "has_all": "has_any"}


def _combine(kind: str, parts: list[Node], spec: FieldSpec) -> Node:
    """AND / OR of nodes on one field, flattened, with plain values gathered into one list condition."""
    flat: list[Node] = []
    for p in parts:
        flat.extend(p.children if isinstance(p, Group) and p.kind == kind else (p,))
    gather = _GATHER[kind]
    out: list[Node] = []
    slots: dict[str, int] = {}
    for node in flat:
        target = gather.get(node.op) if isinstance(node, Condition) else None
        if isinstance(node, Condition) and kind == "all" and node.op == "has_any" and len(node.value) == 1:
            target = "has_all"
        if not isinstance(node, Condition) or target is None or spec.type in ("number", "date"):
            out.append(node)
            continue
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        if target in slots:
            prev = out[slots[target]]
            assert isinstance(prev, Condition)
            out[slots[target]] = Condition(node.field, target, tuple(dict.fromkeys(prev.value + values)))
        else:
            slots[target] = len(out)
            out.append(Condition(node.field, target, values))
    fixed: list[Node] = []
    for node in out:
        # A list condition that gathered a single value reads better as the plain operator.
        if isinstance(node, Condition) and node.op in _SINGLE_OP and len(node.value) == 1:
            single = _SINGLE_OP[node.op]
            node = Condition(node.field, single, node.value if single == "has_any" else node.value[0])
        fixed.append(node)
    return fixed[0] if len(fixed) == 1 else Group("all" if kind == "all" else "any", tuple(fixed))


# ----------------------------------------------------------------------------------------------- conditions


def _split_field(line: str, fields: FieldRegistry) -> tuple[str, str | None, FieldSpec, int]:
    """Field name, relation, spec and the offset where the expression starts."""
    eq = line.find("=")
    if eq < 0:
        m = re.match(r"\s*[\w.]*", line)
        pos = m.end() if m else 0
        raise FilterSyntaxError("expected FIELD=EXPRESSION: there is no '='", text=line, position=pos)
    raw = line[:eq]
    name = raw.strip()
    pos = len(raw) - len(raw.lstrip())
    if not name:
        raise FilterSyntaxError("a condition starts with a field name before '='", text=line, position=pos)
    if not _FIELD_NAME.fullmatch(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise FilterSyntaxError(f"{shown!r} is not a field name", text=line, position=pos)
    name = name.lower()
    relation: str | None = None
    if "." in name:
        prefix, name = name.split(".", 1)
        if prefix not in RELATIONS:
            raise FilterSyntaxError(
                f"unknown relation {prefix!r}: write interactions.FIELD or profile.FIELD",
                text=line,
                position=pos,
            )
        relation = prefix
        pos += len(prefix) + 1
    spec = fields.get(name, relation)
    if spec is None:
        raise FilterSyntaxError(unknown_field_error(name, relation, fields).message, text=line, position=pos)
    return name, relation, spec, eq + 1


def parse_condition(line: str, fields: FieldRegistry | None = None) -> tuple[str | None, Node]:
    """One `FIELD=EXPRESSION`: its relation (None for contact fields) and its node."""
    fields = fields or BUILTIN
    name, relation, spec, start = _split_field(line, fields)
    tokens = tokenize(line[start:], start, line)
    return relation, _Parser(line, tokens, spec, name, relation, fields).parse()


def parse_text(text: str | Sequence[str], fields: FieldRegistry | None = None) -> Node:
    """The tree of a text filter: a string with one condition a line, or a sequence of conditions; all ANDed.

    `fields` is the database's registry (built-in fields only when None)."""
    if isinstance(text, str):
        if len(text) > MAX_TEXT:
            raise FilterError(f"the filter text is longer than {MAX_TEXT:,} characters")
        lines = [ln for ln in text.splitlines() if ln.strip()]
    else:
        lines = [ln for ln in text if ln.strip()]
        if sum(len(ln) for ln in lines) > MAX_TEXT:
            raise FilterError(f"the filter text is longer than {MAX_TEXT:,} characters")
    nodes: list[Node] = []
    related: dict[str, list[Node]] = {}
    slot: dict[str, int] = {}
    for line in lines:
        relation, node = parse_condition(line, fields)
        if relation is None:
            nodes.append(node)
            continue
        if relation not in slot:
            slot[relation] = len(nodes)
            nodes.append(EMPTY)  # placeholder: the related condition sits where its first line was
        related.setdefault(relation, []).append(node)
    for relation, where in related.items():
        nodes[slot[relation]] = Related(relation, where[0] if len(where) == 1 else Group("all", tuple(where)))  # type: ignore[arg-type]
    if not nodes:
        return EMPTY
    return validate(nodes[0] if len(nodes) == 1 else Group("all", tuple(nodes)), fields)


# --------------------------------------------------------------------------------------------------- to_text

_NEEDS_QUOTES = re.compile(r"[|&()<>'*?]|\.\.|^@|^\s|\s$")
_PREC_OR, _PREC_AND, _PREC_ATOM = 1, 2, 3


def _lit(spec: FieldSpec, value: Any, first: bool = True) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if spec.type in ("number", "date"):
        return text
    if _NEEDS_QUOTES.search(text) and (first or _NEEDS_QUOTES.search(text.lstrip("@"))) or text == "":
        return "'" + text.replace("'", "''") + "'"
    return text


def _pattern_text(spec: FieldSpec, pattern: str) -> str:
    # Wildcards stay bare; the literal runs between them are quoted when they hold special characters.
    out: list[str] = []
    for part in re.split(r"([*?])", pattern):
        if part in ("*", "?"):
            out.append(part)
        elif part:
            out.append(_lit(spec, part, first=not out))
    return "".join(out)


def _join(parts: list[tuple[str, int]], sep: str) -> tuple[str, int]:
    prec = _PREC_OR if sep == "|" else _PREC_AND
    if len(parts) == 1:
        return parts[0]
    texts = [t if p > prec or (p == prec) else f"({t})" for t, p in parts]
    return sep.join(texts), prec


def _cond_text(spec: FieldSpec, cond: Condition, negated: bool) -> tuple[str, int] | None:
    op, v = cond.op, cond.value
    if op == "matches" and "*" not in v and "?" not in v and spec.choices and v not in spec.choices:
        # Without wildcards the text form reads it as an exact value, which a field with fixed values refuses.
        return None
    if negated:
        flip = {
            "eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in", "is_empty": "is_not_empty",
            "is_not_empty": "is_empty", "is_true": "is_false", "is_false": "is_true", "has_any": "has_none",
            "has_none": "has_any",
        }  # fmt: skip
        if op in flip:
            return _cond_text(spec, Condition(cond.field, flip[op], v), False)
        if op in ("contains", "starts_with", "ends_with", "matches"):
            positive = _cond_text(spec, cond, False)
            return None if positive is None else ("<>" + positive[0], _PREC_ATOM)
        if op == "has_all":
            return _join([("<>" + _lit(spec, x), _PREC_ATOM) for x in v], "|")
        # The complement of a comparison includes the empty values: two-valued logic, written out.
        outside = {
            "lt": [">=" + _lit(spec, v)], "le": [">" + _lit(spec, v)], "gt": ["<=" + _lit(spec, v)],
            "ge": ["<" + _lit(spec, v)],
        }  # fmt: skip
        if op == "between":
            parts = ["<" + _lit(spec, v[0]), ">" + _lit(spec, v[1])]
        else:
            parts = outside[op]
        return _join([(p, _PREC_ATOM) for p in [*parts, "''"]], "|")
    if op == "eq":
        return _lit(spec, v), _PREC_ATOM
    if op == "ne":
        return "<>" + _lit(spec, v), _PREC_ATOM
    if op in ("in", "has_any"):
        return _join([(_lit(spec, x), _PREC_ATOM) for x in v], "|")
    if op in ("not_in", "has_none"):
        return _join([("<>" + _lit(spec, x), _PREC_ATOM) for x in v], "&")
    if op == "has_all":
        return _join([(_lit(spec, x), _PREC_ATOM) for x in v], "&")
    if op == "contains":
        return "*" + _lit(spec, v, first=False) + "*", _PREC_ATOM
    if op == "starts_with":
        return _lit(spec, v) + "*", _PREC_ATOM
    if op == "ends_with":
        return "*" + _lit(spec, v, first=False), _PREC_ATOM
    if op == "matches":
        return _pattern_text(spec, v), _PREC_ATOM
    if op == "is_empty":
        return "''", _PREC_ATOM
    if op == "is_not_empty":
        return "<>''", _PREC_ATOM
    if op == "is_true":
        return "true", _PREC_ATOM
    if op == "is_false":
        return "false", _PREC_ATOM
    if op in _COMPARE.values():
        sign = {v2: k for k, v2 in _COMPARE.items()}[op]
        return sign + _lit(spec, v), _PREC_ATOM
    if op == "between":
        return f"{_lit(spec, v[0])}..{_lit(spec, v[1])}", _PREC_ATOM
    return None  # pragma: no cover - every operator is handled above


def _field_of(node: Node) -> str | None:
    """The one field a node tests, or None when it tests several or none."""
    if isinstance(node, Condition):
        return node.field
    if isinstance(node, Not):
        return _field_of(node.child)
    if isinstance(node, Group):
        fields = {_field_of(c) for c in node.children}
        return fields.pop() if len(fields) == 1 else None
    return None


def _expr_text(
    node: Node, relation: str | None, fields: FieldRegistry, negated: bool = False
) -> tuple[str, int] | None:
    if isinstance(node, Condition):
        spec = fields.get(node.field, relation)
        return None if spec is None else _cond_text(spec, node, negated)
    if isinstance(node, Not):
        return _expr_text(node.child, relation, fields, not negated)
    if isinstance(node, Group):
        if not node.children:
            return None
        parts = [_expr_text(c, relation, fields, negated) for c in node.children]
        if any(p is None for p in parts):
            return None
        # De Morgan is exact here because every condition is true or false, never unknown.
        sep = "&" if (node.kind == "all") != negated else "|"
        return _join([p for p in parts if p is not None], sep)
    return None


def _conjuncts(node: Node, negated: bool = False) -> list[Node]:
    if isinstance(node, Group) and (node.kind == "all") != negated:
        return [c for child in node.children for c in _conjuncts(child, negated)]
    if isinstance(node, Not):
        return _conjuncts(node.child, not negated)
    return [Not(node) if negated else node]


def _lines(node: Node, relation: str | None, fields: FieldRegistry) -> list[str] | None:
    prefix = "" if relation is None else relation + "."
    out: list[str] = []
    for part in _conjuncts(node):
        field = _field_of(part)
        if field is None:
            return None
        text = _expr_text(part, relation, fields)
        if text is None:
            return None
        out.append(f"{prefix}{field}={text[0]}")
    return out


def to_text(node: Node, fields: FieldRegistry | None = None) -> list[str] | None:
    """The text form of a tree (one condition an item), or None when the tree has none."""
    fields = fields or BUILTIN
    lines: list[str] = []
    seen: set[str] = set()
    for part in _conjuncts(node):
        if isinstance(part, Related):
            # The text form makes one related condition of all lines of a relation, counted once.
            if part.relation in seen or part.min_count != 1:
                return None
            seen.add(part.relation)
            where = _lines(part.where, part.relation, fields)
            if not where:
                return None
            lines.extend(where)
            continue
        if isinstance(part, Group) and part.kind == "any" and not part.children:
            return None
        sub = _lines(part, None, fields)
        if sub is None:
            return None
        lines.extend(sub)
    return lines
