"""Fuzzing the text form: random text and mutations of valid filters give a tree or a usage error, never a crash,
in the parser and in the preview (in-memory and SQL paths), and on the command line (exit 2, one line)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segcore import UsageError
from segcore._db import Database
from segcore._engine import ActionRequest, create_segment
from segcore._filter_check import known_values
from segcore._filter_text import DATE_ORDERS, parse_text
from segcore._filter_tree import Node
from segcore._preview import clear_caches, preview_step
from segcore.cli import main
from tests.factories import add_contacts, company, person

TODAY = dt.date(2025, 3, 31)

# Valid filters using every piece of the syntax: mutations of these reach deep into the parser.
SEEDS = [
    "country=FR|DE|BE",
    "country=(FR|DE)&<>BE",
    "age=25..44",
    "age=..17|65..",
    "total_spent=>=500",
    "rating=<>3",
    "email=*@contoso.com",
    "name=<>*test*",
    "name=O'Brien|D'Arcy",
    "name='O''Brien'",
    "name=*'50%_off'*",
    "name=A..C",
    "country=..FR",
    "city=New York",
    "name=''",
    "phone=<>''",
    "name=@smith*",
    "last_purchase_date=>=today-90d",
    "birth_date=-30D..T",
    "birth_date=..t",
    "birth_date=-CM..CM",
    "birth_date=311225",
    "acquisition_date=31122025..",
    "mailing_groups=NEWS&PROMO",
    "mailing_groups=<>NEWS&<>VIP",
    "age_band=<18|65+",
    "exclude_from_segments=no",
    "interactions.template=EMAIL",
    "interactions.date=-2W..w",
    "profile.questionnaire=HOBBY",
    "gender=female",
    "days_since_last_purchase=<=30",
]

# What a mutation inserts: the characters and runs the language (or a hostile user) cares about.
PIECES = [
    "'", "''", "(", ")", "|", "&", "..", "<", ">", "<>", "<=", ">=", "=", "*", "?", "@", " ", "\t", "-", "+",
    ".", "\n", "\x00", "\udcff", "\ud800", "é", "漢", "t", "T", "w", "CM", "-CM", "-30D", "0", "9",
    "9" * 5000, "1" * 4301, "(" * 300, ")" * 300, "(" * 20 + "a" + ")" * 20, "x" * 1200, "'" * 7, "1e999",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, most: int = 4) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, most))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(min_size=1, max_size=3)))
        if kind == "insert":
            text = text[:pos] + piece + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)) :]
        else:
            text = text[:pos] + piece + text[pos + len(piece) :]
    return text


texts = st.one_of(
    mutated(),
    st.text(max_size=60),
    st.builds(
        lambda f, e: f"{f}={e}", st.sampled_from([s.split("=", 1)[0] for s in SEEDS]), st.text(max_size=40)
    ),
)
lines = st.one_of(texts, st.lists(texts, min_size=1, max_size=3))
# For the preview, mostly texts that still parse: the seeds, one mutation, several seeds ANDed.
parsable = st.one_of(
    st.sampled_from(SEEDS), mutated(most=1), st.lists(st.sampled_from(SEEDS), min_size=2, max_size=4), lines
)
orders = st.sampled_from(DATE_ORDERS)


def _parse(text: str | list[str], order: str, known: object = None) -> Node | None:
    """The tree, or None for a usage error: anything else fails the test."""
    try:
        return parse_text(text, date_order=order, known=known)  # type: ignore[arg-type]
    except UsageError as exc:
        message = str(exc)
        assert "\n" not in message.rstrip("\n") or "\n" in (text if isinstance(text, str) else "".join(text))
        return None


@settings(max_examples=400, deadline=None, database=None)
@given(text=lines, order=orders)
def test_parser_gives_a_tree_or_a_usage_error(text: str | list[str], order: str) -> None:
    _parse(text, order)


@pytest.fixture
def small_db(sqlite_db: Database) -> Iterator[Database]:
    add_contacts(
        sqlite_db,
        [
            company("K1", country="FR", email="info@contoso.com"),
            person("P1", "K1", name="Ann O'Brien", country="FR", birth_date=dt.date(1990, 3, 1),
                   last_purchase_date=dt.date(2025, 3, 15), mailing_groups=["NEWS"]),
            person("P2", name="Élodie Dubois", country="DE", total_spent=750, birth_date=dt.date(2010, 7, 4)),
            person("P3", name="Bob", country="BE", exclude_from_segments=True),
        ],
    )  # fmt: skip
    create_segment(sqlite_db, "FUZZ", description="fuzzing")
    clear_caches()
    yield sqlite_db
    clear_caches()


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=parsable, order=orders)
def test_what_parses_previews_on_both_paths(small_db: Database, text: str | list[str], order: str) -> None:
    tree = _parse(text, order, known_values(small_db))
    if tree is None:
        return
    for backend in ("memory", "sql"):
        try:
            preview_step(small_db, "FUZZ", ActionRequest("add", filter=tree), today=TODAY, backend=backend)
        except UsageError:
            pass


@pytest.fixture
def cli_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database.open(url)
    add_contacts(db, [person("P1", country="FR"), person("P2", country="DE")])
    db.dispose()
    assert main(["--db", url, "segment", "create", "S1", "--description", "fuzz"]) == 0
    return url


# What once ended in "error: unexpected ..." (exit 1): each is now a usage error (exit 2) on one line.
CLI_CASES = [
    pytest.param(
        "name=" + "(" * 1000 + "a" + ")" * 1000, "parentheses nest too deeply", id="deep-parentheses"
    ),
    pytest.param("age=" + "1" * 5000, "is too large", id="over-4300-digits"),
    pytest.param("name=\udcff", "not valid text", id="not-utf8"),
    pytest.param("name='O'Brien'", "write 'O''Brien' or O'Brien", id="quote"),
    pytest.param("mailing_groups=<NEWS", "comparisons fit numbers, dates, text and codes", id="lt-on-list"),
]


@pytest.mark.parametrize(("where", "message"), CLI_CASES)
def test_command_line_refuses_bad_filters_with_exit_2(
    capsys: pytest.CaptureFixture[str], cli_db: str, where: str, message: str
) -> None:
    capsys.readouterr()
    code = main(["--db", cli_db, "segment", "add", "S1", "--where", where, "--preview"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert "unexpected" not in err


def test_recursion_limit_is_far_from_the_nesting_cap() -> None:
    # The parser recurses about three frames per parenthesis: the cap keeps it far from the interpreter's limit.
    assert 3 * 12 < sys.getrecursionlimit() // 4
