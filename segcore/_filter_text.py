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
is one quote. A quote inside a word (after a character that is not a wildcard, in a value that did not start with a
quote) is an apostrophe: `O'Brien`. White space inside a value is kept, around it dropped.

On date fields a value may be Business Central's `t`, `w`, `-30D`, `CM`, `-CM` (kept relative in the tree) or a
short date `311225` read in the caller's `date_order`. Text and code fields take ranges (`A..C`, `<C`), compared
folded. Parentheses nest at most MAX_PARENS deep, so hostile text cannot exhaust the stack.

Positions in error messages count the characters before the fault in that condition's text, as in SPEC §2:
`age=25..x: position 8: 'x' is not a number`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import FilterError, FilterSyntaxError
from ._filter_tree import (
    EMPTY,
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MONTH_END,
    MONTH_START,
    Condition,
    Group,
    Node,
    Not,
    Related,
    first_surrogate,
    kind_of,
    unknown_field_error,
    validate,
    validate_condition,
)
from .fields import AGE_BANDS, BUILTIN, RELATIONS, FieldRegistry, FieldSpec

if TYPE_CHECKING:
    from ._filter_check import KnownValues

__all__ = ["DATE_ORDERS", "parse_text", "to_text"]

MAX_TEXT = 200_000
# Parentheses nest at most as deep as a tree may (docs/filters.md, Limits); deeper text would only exhaust the stack.
MAX_PARENS = MAX_DEPTH
DATE_ORDERS = ("DMY", "MDY", "YMD")
# Short dates as Business Central reads them: 6 or 8 digits in the user's date order; a two-digit year 00-29 is
# 2000-2029 and 30-99 is 1930-1999 (Business Central's rule for two-digit years).
_SHORT_DATE = re.compile(r"\d{6}|\d{8}")
_PIVOT = 30

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


def _unclosed_quote(expr: str, term_begin: int) -> str:
    """The message for an unclosed quote, showing how the value the user meant is written."""
    rest = expr[term_begin:].strip()
    example = "write 'O''Brien' or O'Brien"
    if rest and len(rest) <= 40 and not re.search(r"[|&()<>*?@]|\.\.|\s", rest):
        inner = rest[1:] if rest.startswith("'") else rest
        inner = inner[:-1] if inner.endswith("'") and not inner.endswith("''") else inner
        plain = inner.replace("''", "'")
        if plain.strip("'"):
            example = "write '" + plain.replace("'", "''") + "'"
            if not plain.startswith("'"):
                example += f" or {plain}"
    return f"a quote ' is not closed: {example} (inside quotes, '' is one quote)"


def tokenize(expr: str, offset: int, line: str) -> list[Token]:
    """The tokens of one expression; `offset` is where it starts in `line` (for positions)."""
    tokens: list[Token] = []
    i, n = 0, len(expr)
    term_start = True
    # Where the current term began, and whether it began with a quote: such a value keeps quoting its parts.
    term_begin, quoted_term = 0, False
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
                    raise FilterSyntaxError(_unclosed_quote(expr, term_begin), text=line, position=start)
                if expr[j] == "'":
                    if j + 1 < n and expr[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(expr[j])
                j += 1
            if chars and j + 1 < n and expr[j + 1].isalnum():
                # 'O'Brien: the quote meant as an apostrophe closed the quoted text; say how to write it.
                plain = "".join(chars) + "'" + re.match(r"[^\s|&()<>'*?.]*", expr[j + 1 :]).group()  # type: ignore[union-attr]
                raise FilterSyntaxError(
                    f"a quote ' closes quoted text here but the value goes on: write "
                    f"'{plain.replace(chr(39), chr(39) * 2)}' or {plain} (inside quotes, '' is one quote)",
                    text=line,
                    position=offset + j,
                )
            tokens.append(Token("QUOTED", "".join(chars), start))
            i = j + 1
            quoted_term = quoted_term or term_start
            term_start = False
            continue
        if c in _SINGLE:
            kind = _SINGLE[c]
            tokens.append(Token(kind, c, start))
            i += 1
            term_start = kind != "RPAREN"
            if term_start:
                term_begin, quoted_term = i, False
            continue
        op = next(((s, k) for s, k in _OPERATORS if expr.startswith(s, i)), None)
        if op is not None:
            tokens.append(Token(op[1], op[0], start))
            i += len(op[0])
            term_start = True
            term_begin, quoted_term = i, False
            continue
        if c == "@" and term_start:
            i += 1  # Business Central's case-insensitive marker: we always are
            continue
        word: list[str] = []
        j = i
        while j < n:
            ch = expr[j]
            if ch == "'" and not quoted_term and word[-1] not in "*?":
                # O'Brien: a quote inside a word is an apostrophe ('' there is one too: O''Brien). A quote that
                # starts a value, or follows a wildcard (*'50%'*), still opens quoted text.
                word.append("'")
                j += 2 if expr.startswith("''", j) else 1
                continue
            if ch.isspace() or ch in _SPECIAL or expr.startswith("..", j):
                break
            word.append(ch)
            j += 1
        tokens.append(Token("WORD", "".join(word), start))
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
        date_order: str = "DMY",
        known: KnownValues | None = None,
    ) -> None:
        self.fields = fields
        self.date_order = date_order
        self.known = known
        self.depth = 0
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
            if self.depth >= MAX_PARENS:
                raise self.error(f"parentheses nest too deeply: at most {MAX_PARENS} levels", tok.pos)
            if self.peek().kind == "RPAREN":
                raise self.error("empty parentheses", tok.pos)
            self.depth += 1
            node = self.parse_or(tok)
            self.depth -= 1
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

    def short_date(self, value: _Value, text: str) -> str:
        """`311225` / `31122025` in the user's date order as an ISO date; other text is left as it is."""
        if not _SHORT_DATE.fullmatch(text):
            return text
        wide = len(text) == 8
        year_len = 4 if wide else 2
        if self.date_order == "YMD":
            y, m, d = text[:year_len], text[year_len : year_len + 2], text[year_len + 2 :]
        elif self.date_order == "MDY":
            m, d, y = text[:2], text[2:4], text[4:]
        else:
            d, m, y = text[:2], text[2:4], text[4:]
        year = int(y) if wide else (2000 if int(y) < _PIVOT else 1900) + int(y)
        try:
            return dt.date(year, int(m), int(d)).isoformat()
        except ValueError:
            shape = {"DMY": "DDMMYY", "MDY": "MMDDYY", "YMD": "YYMMDD"}[self.date_order]
            if wide:
                shape = shape.replace("YY", "YYYY")
            raise self.error(
                f"{value.shown()} is not a date in your date order {self.date_order} ({shape})", value.pos
            ) from None

    # -- building conditions

    def build(self, cond: Condition, pos: int) -> Condition:
        try:
            return validate_condition(cond, self.relation, self.fields)
        except FilterSyntaxError:
            raise
        except FilterError as exc:
            raise self.error(exc.message, pos) from None

    @property
    def text_ranges(self) -> bool:
        """True on text and code fields, which take Business Central's text ranges (`A..C`)."""
        return self.spec.type in ("text", "code") and not self.spec.ops

    def require_ordered(self, tok: Token) -> None:
        spec = self.spec
        if spec.type in ("number", "date"):
            return
        if self.text_ranges:
            return
        what = "ranges" if tok.kind == "DOTDOT" else "comparisons"
        raise self.error(
            f"{tok.text!r} {what} fit numbers, dates, text and codes; {spec.label} is {kind_of(spec)}",
            tok.pos,
        )

    def scalar(self, value: _Value) -> Any:
        """A number, date or text-range value, checked here so that the error points at it."""
        if value.is_empty_quote:
            raise self.error("'' (empty) cannot be compared; write '' alone to find empty values", value.pos)
        text = value.text.strip()
        number: Any = text
        op = "eq"
        if self.spec.type == "number":
            if not _NUMBER.fullmatch(text):
                raise self.error(f"{value.shown()} is not a number", value.pos)
            if len(text) > MAX_NUMBER_CHARS:
                raise self.error(f"{value.shown()} is too large", value.pos)
            number = int(text) if _INTEGER.fullmatch(text) else float(text)
        elif self.spec.type == "date":
            number = self.short_date(value, text)
        else:
            if value.has_wildcards:
                raise self.error(
                    "wildcards do not fit a range: write A..C or a pattern such as A*", value.pos
                )
            number, op = value.text, "ge"  # checked as a bound, not as an exact value
        # Checked alone (date format, whole numbers, bounds) so that the error points at this value.
        return self.build(Condition(self.field, op, number), value.pos).value

    def check_known(self, value: _Value, stored: Any) -> None:
        """'did you mean FR?' when an exact code is not in the data but a close one is (never a silent 0)."""
        if self.known is None:
            return
        from ._filter_check import unknown_value  # only with a database at hand: it reads country names

        codes = stored if isinstance(stored, tuple) else (stored,)
        for code in codes:
            message = unknown_value(self.spec, self.relation, value.text.strip(), code, self.known)
            if message is not None:
                raise self.error(message, value.pos)

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
            return self.known_ok(
                value, self.build(Condition(self.field, "has_any", (value.text.strip(),)), value.pos)
            )
        if spec.type in ("number", "date"):
            return self.build(Condition(self.field, "eq", self.scalar(value)), value.pos)
        if value.has_wildcards:
            return self.build(self.pattern(value), value.pos)
        return self.known_ok(value, self.build(Condition(self.field, "eq", self.plain(value)), value.pos))

    def known_ok(self, value: _Value, cond: Condition) -> Condition:
        if cond.value is not None and (self.spec.type == "list" or self.spec.type == "code"):
            self.check_known(value, cond.value)
        return cond

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
            return self.known_ok(
                value, self.build(Condition(self.field, "has_none", (value.text.strip(),)), value.pos)
            )
        if spec.type in ("number", "date"):
            return self.build(Condition(self.field, "ne", self.scalar(value)), value.pos)
        if value.has_wildcards:
            return Not(self.build(self.pattern(value), value.pos))
        return self.known_ok(value, self.build(Condition(self.field, "ne", self.plain(value)), value.pos))

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
    """Field name, relation, spec and the offset where the expression starts.

    `FIELD=EXPRESSION` as Business Central writes it; a comparison may also follow the name without the `=`
    (`rating>=4`, `country<>FR`: the form the dynamic segments' expressions are shown in), the expression then
    starting at the comparison."""
    found = [i for i in (line.find("="), line.find("<"), line.find(">")) if i >= 0]
    if not found:
        m = re.match(r"\s*[\w.]*", line)
        pos = m.end() if m else 0
        raise FilterSyntaxError("expected FIELD=EXPRESSION: there is no '='", text=line, position=pos)
    eq = min(found)
    # After a bare comparison the expression starts with it; after '=' it starts past it.
    start = eq + 1 if line[eq] == "=" else eq
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
    return name, relation, spec, start


def parse_condition(
    line: str,
    fields: FieldRegistry | None = None,
    *,
    date_order: str = "DMY",
    known: KnownValues | None = None,
) -> tuple[str | None, Node]:
    """One `FIELD=EXPRESSION`: its relation (None for contact fields) and its node."""
    fields = fields or BUILTIN
    bad = first_surrogate(line)
    if bad is not None:
        # Bytes that were not UTF-8 (a command line passes them on as lone surrogates): no value can hold them.
        shown = line.encode("utf-8", "replace").decode("utf-8")
        raise FilterSyntaxError(
            "this character is not valid text (the filter was not UTF-8)", text=shown, position=bad
        )
    name, relation, spec, start = _split_field(line, fields)
    tokens = tokenize(line[start:], start, line)
    return relation, _Parser(line, tokens, spec, name, relation, fields, date_order, known).parse()


def parse_text(
    text: str | Sequence[str],
    fields: FieldRegistry | None = None,
    *,
    date_order: str = "DMY",
    known: KnownValues | None = None,
) -> Node:
    """The tree of a text filter: a string with one condition a line, or a sequence of conditions; all ANDed.

    `fields` is the database's registry (built-in fields only when None). `date_order` (DMY, MDY or YMD) reads
    short dates such as `311225`. `known(spec, relation)` gives the values of a code or list field present in the
    data (see `_filter_check.known_values`), or None: an exact code absent from them with a close one present is
    refused with "did you mean ...?" instead of silently matching nobody."""
    order = date_order.upper() if isinstance(date_order, str) else date_order
    if order not in DATE_ORDERS:
        raise FilterError(f"unknown date order {date_order!r}: use {', '.join(DATE_ORDERS)}")
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
        relation, node = parse_condition(line, fields, date_order=order, known=known)
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


# Business Central's spelling of the stored month boundaries.
_DATE_WORDS = {MONTH_START: "-CM", MONTH_END: "CM"}


def _lit(spec: FieldSpec, value: Any, first: bool = True, bound: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if spec.type == "date":
        return _DATE_WORDS.get(text, text)
    if spec.type == "number":
        return text
    needs = _NEEDS_QUOTES.search(text) and (first or _NEEDS_QUOTES.search(text.lstrip("@"))) or text == ""
    # Next to '..' a '.' at either end would merge into the range marker (`A...`).
    if needs or bound and (text.startswith(".") or text.endswith(".")):
        return "'" + text.replace("'", "''") + "'"
    return text


def _text_range(spec: FieldSpec, op: str, v: Any) -> str:
    if op == "le":
        return ".." + _lit(spec, v, bound=True)
    if op == "ge":
        return _lit(spec, v, bound=True) + ".."
    return f"{_lit(spec, v[0], bound=True)}..{_lit(spec, v[1], bound=True)}"


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
    if (
        op == "matches"
        and "*" not in v
        and "?" not in v
        and (spec.choices and v not in spec.choices or v != v.strip())
    ):
        # Without wildcards the text form reads it as an exact value, which a field with fixed values refuses and
        # which is trimmed (`matches " a"` is not `eq "a"`): no text form.
        return None
    if spec.type in ("text", "code") and op in ("le", "ge", "between") and not negated:
        return _text_range(spec, op, v), _PREC_ATOM
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
            "lt": [">=" + _lit(spec, v, bound=True)], "le": [">" + _lit(spec, v, bound=True)],
            "gt": ["<=" + _lit(spec, v, bound=True)], "ge": ["<" + _lit(spec, v, bound=True)],
        }  # fmt: skip
        if op == "between":
            parts = ["<" + _lit(spec, v[0], bound=True), ">" + _lit(spec, v[1], bound=True)]
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
        return sign + _lit(spec, v, bound=True), _PREC_ATOM
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


def _line(field: str, expression: str, compact: bool) -> str:
    """One condition's text: `FIELD=EXPRESSION`, or compact (`rating>=4` rather than `rating=>=4`) when the
    expression starts with a comparison, which reads as one then and parses back the same."""
    if compact and expression[:1] in ("<", ">"):
        return f"{field}{expression}"
    return f"{field}={expression}"


def _lines(node: Node, relation: str | None, fields: FieldRegistry, compact: bool = False) -> list[str] | None:
    prefix = "" if relation is None else relation + "."
    out: list[str] = []
    for part in _conjuncts(node):
        field = _field_of(part)
        if field is None:
            return None
        text = _expr_text(part, relation, fields)
        if text is None:
            return None
        out.append(_line(prefix + field, text[0], compact))
    return out


def to_text(node: Node, fields: FieldRegistry | None = None, *, compact: bool = False) -> list[str] | None:
    """The text form of a tree (one condition an item), or None when the tree has none.

    `compact`: a comparison follows the field name without Business Central's `=` (`rating>=4`, `country<>FR`),
    as a person reads it; both forms parse to the same tree."""
    fields = fields or BUILTIN
    lines: list[str] = []
    seen: set[str] = set()
    for part in _conjuncts(node):
        if isinstance(part, Related):
            # The text form makes one related condition of all lines of a relation, counted once.
            if part.relation in seen or part.min_count != 1:
                return None
            seen.add(part.relation)
            where = _lines(part.where, part.relation, fields, compact)
            if not where:
                return None
            lines.extend(where)
            continue
        if isinstance(part, Group) and part.kind == "any" and not part.children:
            return None
        sub = _lines(part, None, fields, compact)
        if sub is None:
            return None
        lines.extend(sub)
    return lines
