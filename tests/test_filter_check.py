"""'did you mean FR?': exact codes the data does not hold, with a close one, are refused instead of matching nobody."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import pytest
from sqlalchemy import event, insert

from segcore import FilterError, FilterSyntaxError
from segcore._db import Database
from segcore._filter_check import check_known, known_values, unknown_value
from segcore._filter_text import parse_text
from segcore._filter_tree import Condition, from_json
from segcore._models import ContactCode, CustomField, CustomValue, Interaction, ProfileAnswer
from segcore.fields import BUILTIN, FieldSpec, fields_of
from tests.factories import add_contacts, person


@pytest.fixture
def world(sqlite_db: Database) -> Database:
    ids = add_contacts(
        sqlite_db,
        [
            person("P1", country="FR", language="fr", territory="NORTH", mailing_groups=["NEWS", "PROMO"]),
            person("P2", country="DE", language="de", territory="SOUTH"),
            person("P3", country="BE", territory="EAST"),
            person("P4", country="", territory=None),
        ],
    )
    with sqlite_db.write() as conn:
        conn.execute(
            insert(Interaction.__table__),
            [
                {
                    "contact_id": ids["P1"],
                    "date": dt.date(2024, 1, 1),
                    "template": "EMAIL",
                    "cancelled": False,
                },
                {
                    "contact_id": ids["P2"],
                    "date": dt.date(2024, 1, 1),
                    "template": "CALL",
                    "cancelled": False,
                },
                # Filters never count cancelled interactions: its template is not "in the data".
                {
                    "contact_id": ids["P2"],
                    "date": dt.date(2024, 1, 1),
                    "template": "LETTER",
                    "cancelled": True,
                },
            ],
        )
        conn.execute(
            insert(ProfileAnswer.__table__),
            [{"questionnaire": "HOBBY", "answer": "GOLF", "contact_id": ids["P1"]}],
        )
        conn.execute(
            insert(CustomField.__table__),
            [
                {"id": 1, "name": "loyalty_tier", "label": "Loyalty tier", "type": "code", "integer": False},
                {"id": 2, "name": "hobbies", "label": "Hobbies", "type": "list", "integer": False},
            ],
        )
        conn.execute(
            insert(CustomValue.__table__),
            [
                {"field_id": 1, "contact_id": ids["P1"], "txt": "GOLD"},
                {"field_id": 1, "contact_id": ids["P2"], "txt": "SILVER"},
            ],
        )
        conn.execute(
            insert(ContactCode.__table__), [{"kind": "cf2", "code": "TENNIS", "contact_id": ids["P1"]}]
        )
    return sqlite_db


def test_known_values_reads_each_field_of_the_data(world: Database) -> None:
    known = known_values(world)
    fields = fields_of(world)
    get = fields.get
    assert known(get("country"), None) == {"FR", "DE", "BE"}  # type: ignore[arg-type]
    assert known(get("territory"), None) == {"NORTH", "SOUTH", "EAST"}  # type: ignore[arg-type]
    assert known(get("mailing_groups"), None) == {"NEWS", "PROMO"}  # type: ignore[arg-type]
    assert known(get("template", "interactions"), "interactions") == {"EMAIL", "CALL"}  # type: ignore[arg-type]
    assert known(get("answer", "profile"), "profile") == {"GOLF"}  # type: ignore[arg-type]
    assert known(get("loyalty_tier"), None) == {"GOLD", "SILVER"}  # type: ignore[arg-type]
    assert known(get("hobbies"), None) == {"TENNIS"}  # type: ignore[arg-type]
    # Not checked: free text, numbers, fixed choices (their own error), derived fields.
    for name in ("name", "age", "gender", "age_band", "birth_date", "exclude_from_segments"):
        assert known(get(name), None) is None, name  # type: ignore[arg-type]


def test_known_values_reads_a_field_once_and_only_when_asked(world: Database) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "SELECT DISTINCT" in statement:
            statements.append(statement)

    event.listen(world.engine, "before_cursor_execute", count)
    try:
        known = known_values(world)
        assert statements == []  # lazily: nothing read yet
        spec = BUILTIN.get("country")
        assert spec is not None
        for _ in range(3):
            known(spec, None)
        parse_text(["country=FR|DE", "country=<>BE", "territory=NORTH"], known=known)
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
    assert len(statements) == 2  # country once, territory once


DID_YOU_MEAN = [
    pytest.param(
        "country=France", 8, "Country: 'France' is not a value in your data; did you mean FR?", id="name"
    ),
    pytest.param("country=Allemagne", 8, "did you mean DE?", id="french-name"),
    pytest.param("country=Deutschland", 8, "did you mean DE?", id="german-name"),
    pytest.param("country=Bélgica", 8, "did you mean BE?", id="spanish-name"),
    pytest.param(
        "country=FR|Frankreich", 11, "'Frankreich' is not a value in your data; did you mean FR?", id="in"
    ),
    pytest.param("country=<>France", 10, "did you mean FR?", id="ne"),
    pytest.param("country=<>FR&<>Germany", 15, "did you mean DE?", id="not-in"),
    pytest.param("country=Frence", 8, "did you mean FR?", id="misspelt-name"),
    pytest.param(
        "language=French", 9, "Language: 'French' is not a value in your data; did you mean fr?", id="lang"
    ),
    pytest.param(
        "territory=NORHT",
        10,
        "Territory: 'NORHT' is not a value in your data; did you mean NORTH?",
        id="code",
    ),
    pytest.param("territory=sout", 10, "did you mean SOUTH?", id="code-case-insensitive"),
    pytest.param(
        "mailing_groups=NEWZ",
        15,
        "Mailing groups: 'NEWZ' is not a value in your data; did you mean NEWS?",
        id="list",
    ),
    pytest.param("mailing_groups=NEWS&PROMOS", 20, "did you mean PROMO?", id="list-all"),
    pytest.param(
        "interactions.template=EMIAL",
        22,
        "Template: 'EMIAL' is not a value in your data; did you mean EMAIL?",
        id="related",
    ),
    pytest.param("profile.answer=GOLFF", 15, "did you mean GOLF?", id="profile"),
    pytest.param(
        "loyalty_tier=GOLDD",
        13,
        "Loyalty tier: 'GOLDD' is not a value in your data; did you mean GOLD?",
        id="custom-code",
    ),
    pytest.param("hobbies=TENIS", 8, "did you mean TENNIS?", id="custom-list"),
]


@pytest.mark.parametrize(("text", "position", "message"), DID_YOU_MEAN)
def test_did_you_mean_points_at_the_value(world: Database, text: str, position: int, message: str) -> None:
    known = known_values(world)
    with pytest.raises(FilterSyntaxError) as info:
        parse_text(text, fields_of(world), known=known)
    assert info.value.position == position, str(info.value)
    assert message in info.value.reason


PASSES = [
    pytest.param("country=FR|de", id="known-codes"),
    pytest.param("country=XX", id="no-close-value"),  # maybe a country nobody has yet: no evidence of a typo
    pytest.param("country=F*", id="pattern"),
    pytest.param("country=''", id="empty"),
    pytest.param("country=A..F", id="range"),
    pytest.param("territory=WEST", id="code-without-close-value"),
    pytest.param("interactions.template=LETTER", id="cancelled-only-far-from-others"),
    pytest.param("gender=female", id="choices-field"),
    pytest.param("name=France", id="text-field"),
    pytest.param("mailing_groups=NEWS&PROMO", id="list-known"),
]


@pytest.mark.parametrize("text", PASSES)
def test_known_or_unrelated_values_pass(world: Database, text: str) -> None:
    parse_text(text, fields_of(world), known=known_values(world))


def test_without_known_nothing_is_checked() -> None:
    assert parse_text("country=France") == Condition("country", "eq", "FRANCE")


def test_check_known_on_a_json_tree(world: Database) -> None:
    known = known_values(world)
    fields = fields_of(world)
    tree = from_json({"all": [{"field": "country", "op": "in", "value": ["FR", "France"]}]}, fields)
    with pytest.raises(FilterError, match="'FRANCE' is not a value in your data; did you mean FR"):
        check_known(tree, known, fields)
    related = from_json(
        {"related": "interactions", "where": {"not": {"field": "template", "op": "eq", "value": "EMIAL"}}}
    )
    with pytest.raises(FilterError, match="did you mean EMAIL"):
        check_known(related, known, fields)
    check_known(from_json({"field": "country", "op": "in", "value": ["FR", "DE"]}), known, fields)


def test_a_plain_callable_works_as_known() -> None:
    # The parser needs only a function: a page may pass cached value counts instead of a database.
    def known(spec: FieldSpec, relation: str | None) -> Collection[str] | None:
        return {"GOLD", "SILVER"} if spec.name == "territory" else None

    with pytest.raises(FilterSyntaxError, match="did you mean GOLD"):
        parse_text("territory=GOLDEN", known=known)
    parse_text("country=France", known=known)  # not checked: known says None for it
    spec = BUILTIN.get("territory")
    assert spec is not None
    assert unknown_value(spec, None, "gold", "GOLD", known) is None
