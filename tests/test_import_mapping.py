"""Column mapping (import stage 2): headers as people write them become our fields, custom fields, or nothing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segcore._errors import UsageError
from segcore.fields import CONTACT_FIELDS
from segcore.imports.mapping import (
    COMMON_CUSTOM_FIELDS,
    CONTACT_TARGETS,
    INTERACTION_TARGETS,
    OUTCOME_TARGETS,
    SYNONYMS,
    ColumnChoice,
    Mapping,
    custom_field_name,
    header_signature,
    match_header,
    normalise_header,
    suggest_mapping,
)

CRM = (
    "Index,Customer Id,First Name,Last Name,Company,City,Country,Phone 1,Phone 2,Email,Subscription Date,Website"
).split(",")
FRENCH = (
    "N° client;Civilité;Nom;Prénom;Société;Adresse e-mail;Téléphone;Code postal;Ville;Pays;Date de naissance;"
    "Montant total"
).split(";")
CUSTOM_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def fields_of(m: Mapping) -> dict[str, tuple[str, str]]:
    """Header → (field, how), the shape the expectations below are written in."""
    return {c.source: (c.field, c.how) for c in m.columns}


# ------------------------------------------------------------------------------------------------------- targets


def test_targets_are_the_importer_columns() -> None:
    from segcore.imports.check import CONTACT_COLUMNS, INTERACTION_COLUMNS

    assert tuple(CONTACT_TARGETS) == (*CONTACT_COLUMNS, "first_name", "last_name")
    assert tuple(INTERACTION_TARGETS) == INTERACTION_COLUMNS
    assert all(CONTACT_TARGETS.values()) and all(INTERACTION_TARGETS.values())


def test_synonym_tables_name_only_targets_and_are_normalised() -> None:
    for kind, table in SYNONYMS.items():
        targets = {"contacts": CONTACT_TARGETS, "interactions": INTERACTION_TARGETS, "outcomes": OUTCOME_TARGETS}[kind]
        assert set(table) <= set(targets)
        for words in table.values():
            assert all(normalise_header(w) == w for w in words)
    # The common custom names never shadow a built-in field.
    for word, name in COMMON_CUSTOM_FIELDS.items():
        assert match_header(word) is None
        assert CUSTOM_NAME_RE.fullmatch(name) and name not in CONTACT_FIELDS


SYNONYM_CASES = [
    (kind, target, word)
    for kind, table in SYNONYMS.items()
    for target, words in table.items()
    for word in words
]


@pytest.mark.parametrize(("kind", "target", "word"), SYNONYM_CASES)
def test_every_synonym_maps(kind: str, target: str, word: str) -> None:
    match = match_header(word, kind)
    assert match is not None and match[0] == target
    assert match[1] in ("exact", "synonym")


REAL_HEADERS = [
    ("Customer Id", "contact_no"),
    ("Customer ID", "contact_no"),
    ("N° client", "contact_no"),
    ("Nº client", "contact_no"),
    ("Numéro client", "contact_no"),
    ("Kundennummer", "contact_no"),
    ("Kunden-Nr.", "contact_no"),
    ("E-mail", "email"),
    ("E-Mail-Adresse", "email"),
    ("Email Address", "email"),
    ("Courriel", "email"),
    ("Adresse e-mail", "email"),
    ("Adresse courriel", "email"),
    ("Téléphone", "phone"),
    ("Tél.", "phone"),
    ("Phone 1", "phone"),
    ("Phone Number", "phone"),
    ("Telefon", "phone"),
    ("Mobile", "phone"),
    ("Pays", "country"),
    ("Country Code", "country"),
    ("Land", "country"),
    ("Date de naissance", "birth_date"),
    ("Date of Birth", "birth_date"),
    ("DOB", "birth_date"),
    ("Geburtsdatum", "birth_date"),
    ("Code postal", "post_code"),
    ("Zip Code", "post_code"),
    ("ZIP", "post_code"),
    ("Postal Code", "post_code"),
    ("PLZ", "post_code"),
    ("Post code", "post_code"),
    ("Ville", "city"),
    ("Localité", "city"),
    ("Stadt", "city"),
    ("Civilité", "gender"),
    ("Anrede", "gender"),
    ("Sexe", "gender"),
    ("Langue", "language"),
    ("Montant total", "total_spent"),
    ("Chiffre d'affaires", "total_spent"),
    ("Umsatz", "total_spent"),
    ("Lifetime Value", "total_spent"),
    ("Nb commandes", "purchase_count"),
    ("Number of Orders", "purchase_count"),
    ("Date d'inscription", "acquisition_date"),
    ("Sign-up date", "acquisition_date"),
    ("Created at", "acquisition_date"),
    ("Client depuis", "acquisition_date"),
    ("Date dernier achat", "last_purchase_date"),
    ("Last Order Date", "last_purchase_date"),
    ("Lead Source", "acquisition_source"),
    ("Opt-out", "exclude_from_segments"),
    ("Ne pas contacter", "exclude_from_segments"),
    ("Do Not Contact", "exclude_from_segments"),
    ("Job Title", "job_responsibilities"),
    ("Secteur d'activité", "industry_groups"),
    ("Account Manager", "salesperson"),
    ("Région", "territory"),
    ("Churn risk", "churn_risk"),
    ("First Name", "first_name"),
    ("Prénom", "first_name"),
    ("Vorname", "first_name"),
    ("Last Name", "last_name"),
    ("Nom de famille", "last_name"),
    ("Nachname", "last_name"),
    ("Surname", "last_name"),
    ("Full Name", "name"),
    ("Raison sociale", "name"),
    ("Company No.", "company_no"),
    # Our own export labels come back as they went out.
    ("Contact no.", "contact_no"),
    ("Last purchase", "last_purchase_date"),
    ("Excluded from segments", "exclude_from_segments"),
]


@pytest.mark.parametrize(("header", "target"), REAL_HEADERS)
def test_real_contact_headers(header: str, target: str) -> None:
    match = match_header(header)
    assert match is not None and match[0] == target


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Customer Id", "contact_no"),
        ("Date", "date"),
        ("Datum", "date"),
        ("Date d'interaction", "date"),
        ("Type", "template"),
        ("Canal", "template"),
        ("Modèle", "template"),
        ("Campagne", "campaign_no"),
        ("Campaign", "campaign_no"),
        ("Segment", "segment_no"),
        ("Outcome", "evaluation"),
        ("Résultat", "evaluation"),
        ("Coût", "cost"),
        ("Kosten", "cost"),
        ("Durée", "duration_min"),
        ("Duration (min)", "duration_min"),
        ("Salesperson", "salesperson"),
    ],
)
def test_real_interaction_headers(header: str, target: str) -> None:
    match = match_header(header, "interactions")
    assert match is not None and match[0] == target


@pytest.mark.parametrize("header", ["post_code", "Post code", "POST CODE", " post-code "])
def test_exact_match(header: str) -> None:
    assert match_header(header) == ("post_code", "exact")


@pytest.mark.parametrize(
    "header", ["Index", "Website", "Company", "Société", "Firma", "", "  ", "---", "Notes"]
)
def test_no_match(header: str) -> None:
    assert match_header(header) is None


def test_kinds_differ_and_unknown_kind_is_refused() -> None:
    assert match_header("Channel") == ("acquisition_source", "synonym")
    assert match_header("Channel", "interactions") == ("template", "synonym")
    assert match_header("Email", "interactions") is None
    with pytest.raises(UsageError, match="unknown import kind"):
        match_header("Email", "orders")


# ----------------------------------------------------------------------------------------------------- the names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("E-mail", "email"),
        ("N° client", "nclient"),
        ("Date de naissance", "datedenaissance"),
        ("Phone 1", "phone1"),
        ("  Customer_ID ", "customerid"),
        ("Straße", "strasse"),
        ("ＺＩＰ", "zip"),
        ("", ""),
        ("Имя", "имя"),
    ],
)
def test_normalise_header(text: str, expected: str) -> None:
    assert normalise_header(text) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Subscription Date", "subscription_date"),
        ("Montant total (€)", "montant_total"),
        ("N° client", "n_client"),
        ("Phone 2", "phone_2"),
        ("E-mail", "e_mail"),
        ("  __Website__  ", "website"),
        ("2nd address", "f_2nd_address"),
        ("123", "f_123"),
        ("", "column"),
        ("€€€", "column"),
        ("Имя", "column"),
        ("Straße", "strasse"),
        ("Çà et là", "ca_et_la"),
        ("a" * 60, "a" * 40),
        ("word " * 10, "word_word_word_word_word_word_word_word"),
    ],
)
def test_custom_field_name(header: str, expected: str) -> None:
    name = custom_field_name(header)
    assert name == expected
    assert CUSTOM_NAME_RE.fullmatch(name)


def test_header_signature() -> None:
    assert header_signature(["Customer Id", "E-mail"]) == header_signature(["customer id ", "EMAIL"])
    assert header_signature(["Customer Id", "E-mail"]) != header_signature(["E-mail", "Customer Id"])
    assert header_signature(["Customer Id"]) != header_signature(["Customer Id", ""])
    assert header_signature(["a", "b"]) != header_signature(["ab"])
    assert re.fullmatch(r"[0-9a-f]{16}", header_signature(CRM))


# ---------------------------------------------------------------------------------------------- whole mappings


def test_crm_export() -> None:
    m = suggest_mapping(CRM, new_types={10: "date"})
    assert fields_of(m) == {
        "Index": ("index", "new"),
        "Customer Id": ("contact_no", "synonym"),
        "First Name": ("first_name", "exact"),
        "Last Name": ("last_name", "exact"),
        "Company": ("company", "new"),
        "City": ("city", "exact"),
        "Country": ("country", "exact"),
        "Phone 1": ("phone", "synonym"),
        "Phone 2": ("phone_2", "new"),
        "Email": ("email", "exact"),
        "Subscription Date": ("subscription_date", "new"),
        "Website": ("website", "new"),
    }
    assert m.key == "contact_no"
    assert [c.position for c in m.columns] == list(range(len(CRM)))
    by_field = m.targets()
    assert by_field["subscription_date"].new_type == "date"
    assert by_field["subscription_date"].label == "Subscription Date"
    assert by_field["website"].new_type == "text"
    assert by_field["contact_no"].new_type == "" and by_field["contact_no"].label == ""
    assert m.describe()[:2] == ["Index → index (new text field)", "Customer Id → contact_no (synonym)"]
    assert "Subscription Date → subscription_date (new date field)" in m.describe()


def test_french_file() -> None:
    m = suggest_mapping(FRENCH)
    assert fields_of(m) == {
        "N° client": ("contact_no", "synonym"),
        "Civilité": ("gender", "synonym"),
        "Nom": ("last_name", "synonym"),
        "Prénom": ("first_name", "synonym"),
        "Société": ("company", "new"),
        "Adresse e-mail": ("email", "synonym"),
        "Téléphone": ("phone", "synonym"),
        "Code postal": ("post_code", "synonym"),
        "Ville": ("city", "synonym"),
        "Pays": ("country", "synonym"),
        "Date de naissance": ("birth_date", "synonym"),
        "Montant total": ("total_spent", "synonym"),
    }
    assert m.targets()["company"].label == "Société"
    assert m.key == "contact_no"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # "Nom" alone is the name.
        (["Nom", "Email"], {"Nom": "name"}),
        # Beside a full-name column, "Nom" stays the name (the first column wins) and the first name is custom.
        (["Nom", "Prénom", "Nom complet"], {"Nom": "name", "Prénom": "prenom", "Nom complet": "nom_complet"}),
        # German "Name;Vorname" is last and first name.
        (["Name", "Vorname"], {"Name": "last_name", "Vorname": "first_name"}),
        # English "Name" beside "First Name" stays the name; the first name then becomes a custom field, whose
        # name cannot be the first_name target's.
        (["Name", "First Name"], {"Name": "name", "First Name": "first_name_2"}),
        (
            ["Full name", "First Name", "Last Name"],
            {"First Name": "first_name_2", "Last Name": "last_name_2"},
        ),
        (["Given name", "Family name"], {"Given name": "first_name", "Family name": "last_name"}),
    ],
)
def test_name_rules(header: list[str], expected: dict[str, str]) -> None:
    got = {c.source: c.field for c in suggest_mapping(header).columns}
    assert {k: got[k] for k in expected} == expected


def test_interactions() -> None:
    header = ["Customer Id", "Date", "Type", "Campagne", "Outcome", "Coût", "Durée", "Notes", "Date"]
    m = suggest_mapping(header, "interactions", custom_fields={"notes": "text"})
    assert [c.field for c in m.columns] == [
        "contact_no", "date", "template", "campaign_no", "evaluation", "cost", "duration_min", "", "",
    ]  # fmt: skip
    assert m.columns[-1].how == "skip"
    assert m.key == "contact_no"
    with pytest.raises(UsageError, match="keyed by contact_no"):
        suggest_mapping(header, "interactions", key="email")


# ------------------------------------------------------------------------------------------------------ options


def test_overrides() -> None:
    m = suggest_mapping(
        CRM,
        overrides={"Index": "", "website": "homepage", "Phone 2": "phone", "Customer Id": "contact_no"},
        new_types={1: "number"},
    )
    got = fields_of(m)
    assert got["Index"] == ("", "user")
    assert got["Website"] == ("homepage", "user")  # normalised key, new custom field name
    assert got["Customer Id"] == ("contact_no", "user")
    # The override wins over the earlier automatic match: "Phone 1" becomes a custom field.
    assert got["Phone 2"] == ("phone", "user")
    assert got["Phone 1"] == ("phone_1", "new")
    assert m.targets()["homepage"].new_type == "text" and m.targets()["homepage"].label == "Website"
    # A type given for a built-in field's position does not apply to it.
    assert m.targets()["contact_no"].new_type == ""
    assert "Index → skipped (your choice)" in m.describe()


def test_override_to_an_existing_custom_field() -> None:
    m = suggest_mapping(["Site"], custom_fields={"web_site": "text"}, overrides={"Site": "web_site"})
    assert m.columns[0] == ColumnChoice("Site", 0, "web_site", "user")


@pytest.mark.parametrize(
    "field", ["Website", "age", "email_domain", "days_since_last_purchase", "1abc", "a" * 41]
)
def test_override_to_a_field_that_is_not_one(field: str) -> None:
    with pytest.raises(UsageError, match="is not a field"):
        suggest_mapping(CRM, overrides={"Website": field})


def test_override_errors() -> None:
    with pytest.raises(UsageError, match="is not a field"):
        suggest_mapping(["Date"], "interactions", overrides={"Date": "notes"})
    with pytest.raises(UsageError, match="the override names column 'Fax', which the file does not have"):
        suggest_mapping(CRM, overrides={"Fax": ""})
    with pytest.raises(UsageError, match="both map to field 'email'"):
        suggest_mapping(CRM, overrides={"Email": "email", "Website": "email"})
    with pytest.raises(UsageError, match="unknown field type"):
        suggest_mapping(CRM, new_types={0: "integer"})
    with pytest.raises(UsageError, match="new_fields"):
        suggest_mapping(CRM, new_fields="ask")


def test_new_fields_skip() -> None:
    m = suggest_mapping(CRM, new_fields="skip", custom_fields={"website": "text"})
    got = fields_of(m)
    assert got["Index"] == ("", "skip")
    assert got["Phone 2"] == ("", "skip")
    assert got["Company"] == ("", "skip")
    assert got["Website"] == ("website", "custom")  # existing custom fields are still used
    assert got["Customer Id"] == ("contact_no", "synonym")
    assert "Index → skipped" in m.describe()


def test_existing_custom_fields_matched_by_name() -> None:
    existing = {"subscription_date": "date", "company": "code", "phone_2": "text"}
    m = suggest_mapping(CRM, custom_fields=existing)
    got = fields_of(m)
    assert got["Subscription Date"] == ("subscription_date", "custom")
    assert got["Company"] == ("company", "custom")
    assert got["Phone 2"] == ("phone_2", "custom")
    assert m.targets()["company"].new_type == ""
    assert "Company → company (existing custom field)" in m.describe()
    # In another language the common name still finds it.
    assert fields_of(suggest_mapping(["Société"], custom_fields=existing))["Société"] == ("company", "custom")


@pytest.mark.parametrize(
    ("header", "custom_fields", "expected"),
    [
        (["Email", "Email"], {}, ["email", "email_2"]),
        (["Email", "E-mail"], {}, ["email", "e_mail"]),
        (["Foo", "foo", "FOO!"], {}, ["foo", "foo_2", "foo_3"]),
        (["Phone", "Phone 2", "Tel"], {}, ["phone", "phone_2", "tel"]),
        (["Phone", "Phone", "Phone 2"], {}, ["phone", "phone_2", "phone_2_2"]),
        (["Website", "website"], {"website": "text"}, ["website", "website_2"]),
        (["Other"], {"other": "text", "other_2": "text"}, ["other"]),
        (["Other", "Other"], {"other": "text", "other_2": "text"}, ["other", "other_3"]),
        # Built-in names that are no import target still cannot be taken by a new custom field.
        (["Age", "Age band", "Email domain"], {}, ["age_2", "age_band_2", "email_domain_2"]),
        (["First Name", "Full name", "First Name"], {}, ["first_name_2", "name", "first_name_3"]),
        (["Company", "Société", "Firma"], {}, ["company", "company_2", "company_3"]),
        (["x" * 45, "x" * 50], {}, ["x" * 40, "x" * 38 + "_2"]),
        (["", " ", "€"], {}, ["column", "column_2", "column_3"]),
    ],
)
def test_duplicate_names(header: list[str], custom_fields: dict[str, str], expected: list[str]) -> None:
    assert [c.field for c in suggest_mapping(header, custom_fields=custom_fields).columns] == expected


def test_empty_header_cell_labels() -> None:
    m = suggest_mapping(["Email", ""])
    assert m.columns[1].label == "Column 2"
    assert m.describe()[1] == "column 2 → column (new text field)"


@pytest.mark.parametrize(
    ("header", "key", "expected"),
    [
        (["Email", "Name"], None, "email"),
        (["Customer Id", "Email"], None, "contact_no"),
        (["Email", "Customer Id"], None, "contact_no"),
        (["Name", "City"], None, "contact_no"),
        (["Customer Id", "Email"], "email", "email"),
    ],
)
def test_key(header: list[str], key: str | None, expected: str) -> None:
    assert suggest_mapping(header, key=key).key == expected


def test_bad_key() -> None:
    with pytest.raises(UsageError, match="keyed by"):
        suggest_mapping(CRM, key="phone")


# --------------------------------------------------------------------------------------------------------- JSON


def round_trip_cases() -> list[Mapping]:
    return [
        suggest_mapping(CRM, new_types={10: "date"}),
        suggest_mapping(FRENCH, custom_fields={"company": "text"}),
        suggest_mapping(CRM, overrides={"Index": "", "Website": "homepage"}, key="email"),
        suggest_mapping(["Site"], custom_fields={"web_site": "text"}, overrides={"Site": "web_site"}),
        suggest_mapping(["Customer Id", "Date", "Notes"], "interactions"),
        suggest_mapping(CRM).with_choice("Company", "company_name", new_type="code", label="Company name"),
        suggest_mapping([]),
    ]


@pytest.mark.parametrize("m", round_trip_cases())
def test_json_round_trip(m: Mapping) -> None:
    data = m.to_json()
    assert Mapping.from_json(data) == m
    assert Mapping.from_json(json.loads(json.dumps(data))) == m
    assert Mapping.from_json(data, header=m.header()) == m
    assert data["signature"] == header_signature(m.header())


def test_saved_mapping_finds_columns_by_header_text() -> None:
    saved = suggest_mapping(["Customer Id", "Email", "Website"]).to_json()
    m = Mapping.from_json(saved, header=["website", "Notes", "E-MAIL", "customer id"])
    assert [(c.source, c.position, c.field, c.how) for c in m.columns] == [
        ("website", 0, "website", "new"),
        ("Notes", 1, "", "skip"),
        ("E-MAIL", 2, "email", "exact"),
        ("customer id", 3, "contact_no", "synonym"),
    ]


def test_hand_written_mapping() -> None:
    data = {"columns": {"Customer Id": "contact_no", "Website": "website", "Index": ""}, "key": "contact_no"}
    m = Mapping.from_json(data, header=CRM)
    got = fields_of(m)
    assert got["Customer Id"] == ("contact_no", "user")
    assert got["Website"] == ("website", "user")
    assert got["Index"] == ("", "skip")
    assert got["Email"] == ("", "skip")  # not named: skipped
    assert [c.position for c in m.columns] == list(range(len(CRM)))
    assert m.key == "contact_no" and m.kind == "contacts"
    assert m.targets()["website"].label == "Website"
    assert "Website → website (your choice, custom field)" in m.describe()
    # Without a header the positions are the order of the object; without a key the default rule applies.
    m2 = Mapping.from_json({"columns": {"mail": "email", "Birthday": {"field": "birthday", "type": "date"}}})
    assert [(c.source, c.position, c.field) for c in m2.columns] == [
        ("mail", 0, "email"),
        ("Birthday", 1, "birthday"),
    ]
    assert m2.key == "email"
    assert m2.columns[1].new_type == "date"
    assert Mapping.from_json(m2.to_json()) == m2


def test_hand_written_duplicate_headers_are_found_in_order() -> None:
    m = Mapping.from_json({"columns": [{"source": "Tel", "field": "phone"}, {"source": "Tel", "field": "fax"}]},
                          header=["Tel", "Name", "Tel"])  # fmt: skip
    assert [(c.position, c.field) for c in m.columns] == [(0, "phone"), (1, ""), (2, "fax")]


def test_unknown_source_column_is_refused() -> None:
    data = {"columns": {"Customer Id": "contact_no", "Fax": "fax"}}
    with pytest.raises(UsageError, match="^the mapping names column 'Fax', which the file does not have$"):
        Mapping.from_json(data, header=CRM)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ("contact_no", "JSON object"),
        ({}, "'columns'"),
        ({"columns": "Email"}, "'columns'"),
        ({"columns": {"Email": 3}}, "field name, null"),
        ({"columns": [{"field": "email"}]}, "'source'"),
        ({"columns": [{"source": "Email", "position": -1}]}, "whole number"),
        ({"columns": [{"source": "Email", "position": "1"}]}, "whole number"),
        ({"columns": {"Email": "age"}}, "is not a field"),
        ({"columns": {"Email": "email", "Mail": "email"}}, "both map to field 'email'"),
        ({"columns": [{"source": "A", "position": 0}, {"source": "B", "position": 0}]}, "twice"),
        ({"columns": {"Email": {"field": "e", "type": "money"}}}, "unknown field type"),
        ({"columns": {"Email": {"field": "email", "type": "text"}}}, "takes no type"),
        ({"columns": [{"source": "Email", "field": "email", "how": "guess"}]}, "unknown mapping choice"),
        ({"columns": [{"source": "Email", "field": "mail", "how": "exact"}]}, "not a built-in field"),
        ({"columns": [{"source": "Email", "field": "email", "how": "new"}]}, "not a custom field"),
        ({"columns": {"Email": "email"}, "kind": "orders"}, "unknown import kind"),
        ({"columns": {"Email": "email"}, "key": "phone"}, "keyed by"),
        ({"columns": {"Email": "email"}, "key": 3}, "'key'"),
        ({"columns": {"Date": "date"}, "kind": "interactions", "key": "email"}, "keyed by"),
        ({"columns": {"Notes": "notes"}, "kind": "interactions"}, "is not a field"),
        ({"columns": {"Email": "email"}, "version": 99}, "newer version"),
    ],
)
def test_bad_mapping_files(data: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Mapping.from_json(data)


# ------------------------------------------------------------------------------------------------- user choices


def test_with_choice() -> None:
    m = suggest_mapping(CRM)
    m2 = m.with_choice("Index", "")
    assert fields_of(m2)["Index"] == ("", "user")
    assert m2.columns[1:] == m.columns[1:]
    assert m == suggest_mapping(CRM)  # frozen: the original is unchanged
    # Moving a field: the column that had it is skipped.
    m3 = m.with_choice("phone 2", "phone")
    assert fields_of(m3)["Phone 2"] == ("phone", "user")
    assert fields_of(m3)["Phone 1"] == ("", "skip")
    # A custom field: typed and labelled.
    m4 = m.with_choice("Subscription Date", "acquisition_date").with_choice(
        "Website", "site", new_type="code"
    )
    assert fields_of(m4)["Subscription Date"] == ("acquisition_date", "user")
    assert m4.targets()["site"] == ColumnChoice("Website", 11, "site", "user", "code", "Website")
    assert "Website → site (your choice, custom code field)" in m4.describe()
    assert "Subscription Date → acquisition_date (your choice)" in m4.describe()
    assert m4.key == m.key
    with pytest.raises(UsageError, match="has no column 'Fax'"):
        m.with_choice("Fax", "phone")
    with pytest.raises(UsageError, match="is not a field"):
        m.with_choice("Index", "age")
    with pytest.raises(UsageError, match="takes no type"):
        m.with_choice("Index", "phone", new_type="text")
    with pytest.raises(UsageError, match="unknown field type"):
        m.with_choice("Index", "idx", new_type="float")


# -------------------------------------------------------------------------------------------------- properties

HEADER_CELL = st.text(alphabet="abcXYZéÉèçÇüÜßøñ漢Имя0123456789 -_.,;:/()°€'\"#!?\t", max_size=30)
MIXED_CELL = st.one_of(
    HEADER_CELL,
    st.sampled_from(CRM + FRENCH + ["Name", "Nom", "Vorname", "Age", "Email domain", "", "Phone", "Société"]),
)


@settings(max_examples=300, deadline=None)
@given(
    header=st.lists(MIXED_CELL, max_size=25),
    kind=st.sampled_from(["contacts", "interactions"]),
    new_fields=st.sampled_from(["auto", "skip"]),
    existing=st.lists(
        st.sampled_from(["company", "website", "phone_2", "index", "abc", "column"]), max_size=3
    ),
)
def test_suggest_mapping_properties(
    header: list[str], kind: str, new_fields: str, existing: list[str]
) -> None:
    m = suggest_mapping(header, kind, new_fields=new_fields, custom_fields=dict.fromkeys(existing, "text"))
    assert [c.position for c in m.columns] == list(range(len(header)))
    assert [c.source for c in m.columns] == header
    mapped = [c.field for c in m.columns if c.field]
    assert len(mapped) == len(set(mapped))
    targets = CONTACT_TARGETS if kind == "contacts" else INTERACTION_TARGETS
    for c in m.columns:
        if c.how == "new":
            assert CUSTOM_NAME_RE.fullmatch(c.field), c.field
            assert c.field not in CONTACT_FIELDS and c.field not in targets and c.field not in existing
            assert c.new_type == "text" and c.label
        elif c.how in ("exact", "synonym"):
            assert c.field in targets
        elif c.how == "custom":
            assert c.field in existing
        else:
            assert c.how == "skip" and c.field == ""
    assert m.key in ("contact_no", "email")
    assert Mapping.from_json(json.loads(json.dumps(m.to_json()))) == m
    assert Mapping.from_json(m.to_json(), header=header) == m
    assert len(m.describe()) == len(header)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_custom_field_name_is_always_valid(header: str) -> None:
    name = custom_field_name(header)
    assert CUSTOM_NAME_RE.fullmatch(name), name
    assert custom_field_name(name) == name
