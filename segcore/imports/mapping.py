"""Import stage 2 of read → map → check → write: which of our fields each column of a file feeds.

Marketers bring files with their own column names ("Customer Id", "Adresse e-mail", "Kundennummer"). From a header
alone this module suggests a `Mapping`: every column becomes a built-in field (by its name or a synonym), an existing
custom field of the same name, a new custom field, or nothing. The user can then override any column, and a mapping
can be saved as JSON and reused for the next file with the same header (`header_signature`).

Matching works on `normalise_header`: lower case, accents removed, punctuation and spaces removed, so "E-mail",
"e mail" and "EMAIL" are the same header. The synonym tables are plain data (`SYNONYMS`), written in that normalised
form, so extending them is adding a word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping as Map
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._errors import UsageError
from ..fields import CONTACT_FIELDS, INTERACTION_FIELDS

__all__ = [
    "COMMON_CUSTOM_FIELDS",
    "CONTACT_TARGETS",
    "FIELD_TYPES",
    "INTERACTION_TARGETS",
    "OUTCOME_TARGETS",
    "SYNONYMS",
    "ColumnChoice",
    "Mapping",
    "custom_field_name",
    "header_signature",
    "match_header",
    "normalise_header",
    "suggest_mapping",
]

KINDS = ("contacts", "interactions", "outcomes")
KEYS = ("contact_no", "email")
HOWS = ("exact", "synonym", "custom", "new", "user", "skip")
# The types a new custom field can have: the field types of the filter language (segcore.fields.OPS_BY_TYPE),
# which custom_fields.type allows.
FIELD_TYPES = ("number", "date", "code", "text", "boolean", "list")
MAX_NAME = 40  # custom_fields.name is String(40)
MAX_LABEL = 200  # custom_fields.label is String(200): a longer header is cut, not refused
_CUSTOM_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAPPING_VERSION = 1

# A copy of segcore.imports.check.CONTACT_COLUMNS / INTERACTION_COLUMNS, not an import: the importer will import this
# module for the pipeline, and importing it back would be a cycle (and would pull pandas/pyarrow into a module that
# needs neither). tests/test_import_mapping.py holds the copies equal.
_CONTACT_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "phone", "city", "post_code", "territory", "salesperson",
    "country", "language", "gender", "birth_date", "acquisition_date", "last_purchase_date", "acquisition_source",
    "rating", "churn_risk", "total_spent", "purchase_count", "exclude_from_segments", "mailing_groups",
    "industry_groups", "job_responsibilities", "profile",
)  # fmt: skip
_INTERACTION_COLUMNS = (
    "contact_no", "date", "template", "campaign_no", "segment_no", "evaluation", "salesperson", "cost", "duration_min",
)  # fmt: skip
_OUTCOME_COLUMNS = ("contact_no", "date", "kind", "amount", "reference")

# Labels for the targets that are not filterable fields of segcore.fields.
_EXTRA_LABELS = {
    "profile": "Profile answers",
    "first_name": "First name",
    "last_name": "Last name",
    "cost": "Cost",
    "duration_min": "Duration (min)",
}


def _label(name: str, fields: Map[str, Any]) -> str:
    spec = fields.get(name) or CONTACT_FIELDS.get(name)
    return spec.label if spec is not None else _EXTRA_LABELS[name]


CONTACT_TARGETS: dict[str, str] = {
    name: _label(name, CONTACT_FIELDS) for name in (*_CONTACT_COLUMNS, "first_name", "last_name")
}
INTERACTION_TARGETS: dict[str, str] = {
    name: _label(name, INTERACTION_FIELDS) for name in _INTERACTION_COLUMNS
}
# Outcomes (orders, sign-ups ...) are no filter fields: their labels are written here.
OUTCOME_TARGETS: dict[str, str] = {
    "contact_no": CONTACT_TARGETS["contact_no"],
    "date": "Date",
    "kind": "Outcome kind",
    "amount": "Amount",
    "reference": "Reference",
}
_TARGETS = {"contacts": CONTACT_TARGETS, "interactions": INTERACTION_TARGETS, "outcomes": OUTCOME_TARGETS}

_CONTACT_NO = (
    "contactno", "contactnumber", "customerid", "customerno", "customernumber", "clientid", "clientno", "nclient",
    "ndeclient", "numeroclient", "numerodeclient", "noclient", "idclient", "codeclient", "refclient", "id",
    "kundennummer", "kundennr", "kundenid",
)  # fmt: skip
_SALESPERSON = ("salesperson", "owner", "accountmanager", "commercial", "vendeur", "verkaufer", "betreuer")

# Synonyms by kind and target, in normalised form (see normalise_header). A word belongs to one target per kind;
# the target's own name and its label always match too and need not be listed.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "contacts": {
        "contact_no": _CONTACT_NO,
        "type": ("type", "contacttype", "kind", "typedecontact", "kontakttyp"),
        "company_no": ("companyno", "companyid", "companynumber", "accountid", "numerosociete", "firmennummer"),
        "name": ("name", "fullname", "nom", "nomcomplet", "raisonsociale", "contactname"),
        "email": (
            "email", "emailaddress", "mail", "courriel", "adressemail", "adresseemail", "adressecourriel",
            "emailadresse", "mailadresse",
        ),
        "phone": (
            "phone", "phone1", "telephone", "tel", "tel1", "mobile", "portable", "gsm", "telefon", "phonenumber",
            "numerodetelephone", "telefonnummer", "handy", "mobil", "mobilephone", "cellphone",
        ),
        "city": ("city", "town", "ville", "localite", "stadt", "ort", "wohnort"),
        "post_code": ("postcode", "postalcode", "zip", "zipcode", "codepostal", "cp", "plz", "postleitzahl"),
        "territory": ("territory", "region", "territoire", "secteur", "gebiet"),
        "salesperson": _SALESPERSON,
        "country": ("country", "countrycode", "pays", "land", "codepays", "landercode"),
        "language": ("language", "lang", "langue", "sprache"),
        "gender": ("gender", "sex", "sexe", "genre", "civilite", "title", "anrede", "geschlecht", "salutation"),
        "birth_date": (
            "birthdate", "dateofbirth", "dob", "birthday", "datedenaissance", "naissance", "geburtsdatum", "geburtstag",
        ),
        "acquisition_date": (
            "acquisitiondate", "signupdate", "createdat", "creationdate", "datedecreation", "dateinscription",
            "datedinscription", "customersince", "clientdepuis", "kundeseit",
        ),
        "last_purchase_date": (
            "lastpurchasedate", "lastorderdate", "dernierachat", "datedernierachat", "derniercommande",
            "dernierecommande", "datedernierecommande", "letzterkauf", "letztebestellung",
        ),
        "acquisition_source": ("acquisitionsource", "source", "leadsource", "canal", "channel", "origine", "quelle"),
        # Not "score" or "note": a lead score (0-100) or a remark column would fail every row of a 1-5 rating.
        "rating": ("rating", "stars", "etoiles", "bewertung"),
        "churn_risk": ("churnrisk", "churn", "risquedechurn", "abwanderungsrisiko"),
        "total_spent": (
            "totalspent", "totalspend", "spend", "spent", "amountspent", "revenue", "totalrevenue", "lifetimevalue", "ltv", "montanttotal",
            "chiffredaffaires", "ca", "umsatz", "gesamtumsatz",
        ),
        "purchase_count": (
            "purchasecount", "orders", "ordercount", "numberoforders", "nbcommandes", "nombredecommandes", "nbachats",
            "anzahlbestellungen", "bestellungen",
        ),
        "exclude_from_segments": (
            "excludefromsegments", "donotcontact", "optout", "unsubscribed", "exclu", "nepascontacter", "sperre",
        ),
        "mailing_groups": ("mailinggroups", "newsletters", "lists", "listes", "verteiler"),
        "industry_groups": ("industry", "industrygroups", "secteurdactivite", "branche"),
        "job_responsibilities": ("jobresponsibilities", "jobtitle", "role", "fonction", "poste", "position"),
        "profile": ("profile", "profil", "profileanswers"),
        "first_name": ("firstname", "givenname", "prenom", "vorname", "forename"),
        "last_name": ("lastname", "surname", "familyname", "nomdefamille", "nachname", "familienname"),
    },
    "interactions": {
        "contact_no": _CONTACT_NO,
        "date": ("date", "interactiondate", "datedinteraction", "datum"),
        "template": ("template", "type", "channel", "canal", "modele", "vorlage"),
        "campaign_no": ("campaign", "campaignno", "campaignid", "campagne", "kampagne"),
        "segment_no": ("segment", "segmentno", "segmentid"),
        "evaluation": ("evaluation", "outcome", "resultat", "ergebnis"),
        "salesperson": _SALESPERSON,
        "cost": ("cost", "cout", "kosten"),
        "duration_min": ("duration", "durationmin", "duree", "dauer", "minutes"),
    },
    "outcomes": {
        # An orders file names its customer column plainly: "Customer", "Client", "Kunde" is the customer's number.
        "contact_no": (*_CONTACT_NO, "customer", "client", "kunde", "contact"),
        "date": (
            "date", "orderdate", "purchasedate", "transactiondate", "outcomedate", "eventdate", "datedecommande",
            "datecommande", "dateachat", "datedachat", "datedevenement", "bestelldatum", "kaufdatum", "datum",
        ),
        "kind": (
            "kind", "type", "outcome", "outcomekind", "outcometype", "event", "eventtype", "conversion", "action",
            "typedevenement", "evenement", "resultat", "art", "ereignis", "ereignistyp", "typ",
        ),
        "amount": (
            "amount", "total", "ordertotal", "ordervalue", "value", "revenue", "price", "sales", "montant",
            "montantttc", "montantht", "valeur", "prix", "chiffredaffaires", "ca", "betrag", "wert",
            "umsatz", "gesamtbetrag", "preis",
        ),
        "reference": (
            "reference", "ref", "orderno", "ordernumber", "orderid", "order", "invoiceno", "invoicenumber",
            "invoiceid", "transactionid", "numerodecommande", "ncommande", "commande", "nfacture",
            "numerodefacture", "facture", "bestellnummer", "bestellnr", "bestellung", "rechnungsnummer",
            "auftragsnummer",
        ),
    },
}  # fmt: skip


# Columns that are no built-in field but common enough that files in every language should feed the same custom
# field: a French "Société" and an English "Company" both become the custom field "company" (not company_no, which
# is a contact number). Normalised header → custom field name.
COMMON_CUSTOM_FIELDS: dict[str, str] = {
    word: name
    for name, words in {
        "company": (
            "company", "companyname", "societe", "entreprise", "firma", "firmenname", "organisation", "organization",
        ),
        "website": ("website", "web", "url", "siteweb", "siteinternet", "homepage", "webseite"),
        "address": ("address", "street", "adresse", "rue", "strasse", "anschrift"),
    }.items()
    for word in words
}  # fmt: skip


# -------------------------------------------------------------------------------------------------------- names


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _fold(text: str) -> str:
    # NFKD before case folding so compatibility forms ("㎒", full-width letters) fold too, and again after it, since
    # casefold can itself produce a combining mark ("İ" → "i̇"). casefold, not lower, turns "ß" into "ss".
    return _strip_marks(_strip_marks(text).casefold())


def normalise_header(text: str) -> str:
    """The form headers are matched in: lower case, no accents, no spaces or punctuation ("N° client" → "nclient").

    Letters of other scripts are kept (they are alphanumeric), so two different Cyrillic headers stay different for
    header_signature even though no synonym matches them.
    """
    return re.sub(r"[\W_]+", "", _fold(text))


def custom_field_name(header: str) -> str:
    """The name of a new custom field made from a header: [a-z0-9_], starts with a letter, at most 40 characters."""
    name = re.sub(r"[^a-z0-9]+", "_", _fold(header)).strip("_")
    if not name:
        return "column"
    if name[0].isdigit():
        name = "f_" + name
    return name[:MAX_NAME].rstrip("_")


def header_signature(header: Sequence[str]) -> str:
    """A stable key for "a file with the same header": equal for headers that differ only in case, accents, spacing."""
    joined = "\x1f".join(normalise_header(cell) for cell in header)
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()[:16]


def _check_kind(kind: str) -> dict[str, str]:
    if kind not in _TARGETS:
        raise UsageError(f"unknown import kind {kind!r}: contacts, interactions or outcomes")
    return _TARGETS[kind]


def _build_lookup(kind: str) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for target, words in SYNONYMS[kind].items():
        for word in words:
            lookup.setdefault(normalise_header(word), target)
    # Our own labels ("Contact no.", "Last purchase") match too: a file exported by the dashboard imports as is.
    for target, label in _TARGETS[kind].items():
        lookup.setdefault(normalise_header(label), target)
    return lookup


_EXACT = {kind: {normalise_header(t): t for t in targets} for kind, targets in _TARGETS.items()}
_LOOKUP = {kind: _build_lookup(kind) for kind in KINDS}


def match_header(text: str, kind: str = "contacts") -> tuple[str, str] | None:
    """(target, "exact" | "synonym") for a header cell, or None when no built-in field fits."""
    _check_kind(kind)
    key = normalise_header(text)
    if not key:
        return None
    if key in _EXACT[kind]:
        return _EXACT[kind][key], "exact"
    target = _LOOKUP[kind].get(key)
    return (target, "synonym") if target is not None else None


# A new custom field may not take the name of anything built in: a stored or derived contact field ("age",
# "email_domain") or an import target ("first_name"), or the values would land in the wrong place later.
_RESERVED = frozenset(CONTACT_FIELDS) | frozenset(CONTACT_TARGETS)


def _check_field(kind: str, field: str) -> None:
    """Refuse a field a user named that a file of this kind cannot fill."""
    targets = _check_kind(kind)
    if field == "" or field in targets:
        return
    if kind == "contacts" and _CUSTOM_NAME_RE.fullmatch(field) and field not in _RESERVED:
        return
    if kind == "contacts":
        raise UsageError(
            f"{field!r} is not a field a contacts file can fill: use one of {', '.join(targets)}, "
            "or a custom field name (lower-case letters, digits and _, starting with a letter, at most 40)"
        )
    raise UsageError(f"{field!r} is not a field of an {kind} file: use one of {', '.join(targets)}")


def _check_type(new_type: str) -> None:
    if new_type and new_type not in FIELD_TYPES:
        raise UsageError(f"unknown field type {new_type!r}: use one of {', '.join(FIELD_TYPES)}")


def _default_label(source: str, position: int) -> str:
    """A new custom field's label: its header as written (cut to fit), or "Column 3" for a header cell left empty."""
    return source[:MAX_LABEL] if source.strip() else f"Column {position + 1}"


def _custom_name_for(header: str) -> str:
    """The custom field an unmatched column feeds: a common one by its synonyms, else one named after the header."""
    return COMMON_CUSTOM_FIELDS.get(normalise_header(header)) or custom_field_name(header)


def _unique_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"_{n}"
        name = base[: MAX_NAME - len(suffix)].rstrip("_") + suffix
        if name not in taken:
            return name
        n += 1


# ------------------------------------------------------------------------------------------------------ mapping


@dataclass(frozen=True)
class ColumnChoice:
    """What one file column becomes: a built-in field, a custom field (existing or new), or nothing."""

    source: str  # the header cell as written
    position: int  # 0-based column position in the file
    field: str  # target field name; "" = skipped
    # "exact" | "synonym" (a built-in field) | "custom" (existing custom field of that name) | "new" (new custom
    # field) | "user" (the user's choice; "" = skipped by the user) | "skip"
    how: str
    # For a new custom field: its type. For how == "user" on a custom field: the type to create it with when it
    # does not exist yet ("" = existing, or decided by the check stage).
    new_type: str = ""
    label: str = ""  # for a new custom field: its label (the header as written)

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise UsageError(f"unknown mapping choice {self.how!r}: use one of {', '.join(HOWS)}")
        _check_type(self.new_type)

    def describe(self) -> str:
        source = self.source if self.source.strip() else f"column {self.position + 1}"
        if not self.field:
            return f"{source} → skipped" + (" (your choice)" if self.how == "user" else "")
        if self.how in ("exact", "synonym"):
            detail = self.how
        elif self.how == "custom":
            detail = "existing custom field"
        elif self.how == "new":
            detail = f"new {self.new_type or 'text'} field"
        elif self.field in CONTACT_TARGETS or self.field in INTERACTION_TARGETS or self.field in OUTCOME_TARGETS:
            detail = "your choice"
        else:
            detail = f"your choice, custom {self.new_type + ' ' if self.new_type else ''}field"
        return f"{source} → {self.field} ({detail})"


@dataclass(frozen=True)
class Mapping:
    """How a file's columns become fields, and which field identifies a contact."""

    kind: str  # "contacts" | "interactions" | "outcomes"
    columns: tuple[ColumnChoice, ...]
    key: str = "contact_no"  # "contact_no" or "email": the field that finds the stored contact on re-import

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        allowed = KEYS if self.kind == "contacts" else ("contact_no",)
        if self.key not in allowed:
            raise UsageError(f"a {self.kind} file is keyed by {' or '.join(allowed)}, not {self.key!r}")

    def targets(self) -> dict[str, ColumnChoice]:
        """Field → choice, for the mapped columns (built-in and custom)."""
        return {c.field: c for c in self.columns if c.field}

    def header(self) -> list[str]:
        """The header cells the mapping was made for, in column order."""
        return [c.source for c in sorted(self.columns, key=lambda c: c.position)]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form; `signature` lets a saved mapping be offered again for a file with the same header."""
        columns: list[dict[str, Any]] = []
        for c in self.columns:
            item: dict[str, Any] = {
                "source": c.source,
                "position": c.position,
                "field": c.field,
                "how": c.how,
            }
            if c.new_type:
                item["new_type"] = c.new_type
            if c.label:
                item["label"] = c.label
            columns.append(item)
        return {
            "version": _MAPPING_VERSION,
            "kind": self.kind,
            "key": self.key,
            "signature": header_signature(self.header()),
            "columns": columns,
        }

    @classmethod
    def from_json(cls, data: Any, header: Sequence[str] | None = None) -> Mapping:
        """Read a saved mapping (to_json output) or a hand-written one ({"columns": {"Customer Id": "contact_no"}}).

        With `header`, columns are found by their header text (case, accents and spacing ignored), so a mapping
        saved for one file serves another whose columns are in another order; columns of the file the mapping does
        not name are skipped. Without it, positions come from the mapping (or the order of its columns).
        """
        if not isinstance(data, dict):
            raise UsageError("a mapping must be a JSON object with a 'columns' entry")
        version = data.get("version", _MAPPING_VERSION)
        if isinstance(version, int) and version > _MAPPING_VERSION:
            raise UsageError(f"this mapping was saved by a newer version of the program (format {version})")
        kind = data.get("kind", "contacts")
        if not isinstance(kind, str):
            raise UsageError("the mapping's 'kind' must be contacts, interactions or outcomes")
        _check_kind(kind)
        raw = data.get("columns")
        items: list[dict[str, Any]]
        if isinstance(raw, dict):
            items = [_hand_written_item(source, value) for source, value in raw.items()]
        elif isinstance(raw, list):
            items = [_saved_item(item) for item in raw]
        else:
            raise UsageError("the mapping's 'columns' must be a list of columns or an object {column: field}")

        locate = _Locator(header) if header is not None else None
        choices: list[ColumnChoice] = []
        seen_positions: dict[int, str] = {}
        for index, item in enumerate(items):
            source = item["source"]
            if locate is not None:
                position, source = locate(source)
            else:
                position = item.get("position", index)
            if position in seen_positions:
                raise UsageError(
                    f"the mapping names column {position + 1} twice ({seen_positions[position]!r})"
                )
            seen_positions[position] = source
            choices.append(_choice_from_item(kind, source, position, item))
        if header is not None:
            # The file's columns the mapping does not name: skipped, so the mapping still covers every column.
            choices += [
                ColumnChoice(cell, pos, "", "skip")
                for pos, cell in enumerate(header)
                if pos not in seen_positions
            ]
        choices.sort(key=lambda c: c.position)
        _refuse_duplicates(choices)
        key = data.get("key")
        if key is not None and not isinstance(key, str):
            raise UsageError("the mapping's 'key' must be contact_no or email")
        return cls(kind, tuple(choices), key if key is not None else _default_key(choices))

    def with_choice(self, source: str, field: str, *, new_type: str = "", label: str = "") -> Mapping:
        """The mapping with the user's choice for one column (field "" = skip it).

        A field another column had is taken from it (that column becomes skipped): a dropdown per column moves a
        field, it does not refuse. For a custom field, `new_type` is the type to create it with if it does not exist
        and `label` defaults to the header. The key is left as it was.
        """
        _check_field(self.kind, field)
        _check_type(new_type)
        position = _find_column(self.columns, source)
        targets = _TARGETS[self.kind]
        if field in targets or not field:
            if new_type or label:
                raise UsageError(
                    f"{field or 'a skipped column'!r} is a built-in choice: it takes no type or label"
                )
            new = ColumnChoice(self.columns[position].source, self.columns[position].position, field, "user")
        else:
            src = self.columns[position].source
            pos = self.columns[position].position
            new = ColumnChoice(src, pos, field, "user", new_type, label or _default_label(src, pos))
        columns = [
            ColumnChoice(c.source, c.position, "", "skip")
            if field and c.field == field and i != position
            else c
            for i, c in enumerate(self.columns)
        ]
        columns[position] = new
        return replace(self, columns=tuple(columns))

    def describe(self) -> list[str]:
        """One line a column: "Customer Id → contact_no (synonym)", "Index → skipped"."""
        return [c.describe() for c in self.columns]


def _find_column(columns: Sequence[ColumnChoice], source: str) -> int:
    """Index of the column named `source` as written, else by its normalised form (the first of equal headers)."""
    for i, c in enumerate(columns):
        if c.source == source:
            return i
    key = normalise_header(source)
    for i, c in enumerate(columns):
        if normalise_header(c.source) == key:
            return i
    raise UsageError(f"the mapping has no column {source!r}")


class _Locator:
    """Finds a mapping's source columns in a file's header; a header named twice is found twice, in order."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = list(header)
        self.used: set[int] = set()

    def __call__(self, source: str) -> tuple[int, str]:
        key = normalise_header(source)
        for exact in (True, False):
            for pos, cell in enumerate(self.header):
                hit = cell == source if exact else normalise_header(cell) == key
                if hit and pos not in self.used:
                    self.used.add(pos)
                    return pos, cell
        raise UsageError(f"the mapping names column {source!r}, which the file does not have")


def _hand_written_item(source: Any, value: Any) -> dict[str, Any]:
    # {"Website": "website"}, {"Index": ""} or null to skip, {"Signup": {"field": "signup", "type": "date"}}.
    if value is None:
        return {"source": source, "field": ""}
    if isinstance(value, str):
        return {"source": source, "field": value}
    if not isinstance(source, str):
        raise UsageError("the columns of a mapping must be named by their header text")
    if isinstance(value, dict):
        item = {"source": source, "field": value.get("field", "")}
        if "type" in value or "new_type" in value:
            item["new_type"] = value.get("type", value.get("new_type"))
        if "label" in value:
            item["label"] = value["label"]
        return item
    raise UsageError(
        f"the mapping of column {source!r} must be a field name, null, or an object with a 'field'"
    )


def _saved_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("source"), str):
        raise UsageError("every column of a mapping must be an object with a 'source' (the header cell)")
    position = item.get("position")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool) or position < 0):
        raise UsageError(f"the position of column {item['source']!r} must be a whole number from 0")
    out = {k: v for k, v in item.items() if k in ("source", "field", "how", "new_type", "label", "position")}
    if position is None:
        out.pop("position", None)
    if "type" in item and "new_type" not in item:
        out["new_type"] = item["type"]
    return out


def _choice_from_item(kind: str, source: str, position: int, item: dict[str, Any]) -> ColumnChoice:
    field = item.get("field", "")
    field = "" if field is None else field
    how = item.get("how")
    new_type = item.get("new_type", "")
    label = item.get("label", "")
    for name, value in (("field", field), ("how", how or ""), ("new_type", new_type), ("label", label)):
        if not isinstance(value, str):
            raise UsageError(f"the {name} of column {source!r} must be text")
    _check_field(kind, field)
    targets = _TARGETS[kind]
    written_by_hand = how is None
    if how is None:
        # A hand-written choice is the user's; a saved one always says how it was made.
        how = "user" if field else "skip"
    if how == "skip" and field:
        how = "user"
    elif how in ("exact", "synonym") and field not in targets:
        raise UsageError(
            f"column {source!r}: {field!r} is not a built-in field, so it cannot be an {how} match"
        )
    elif how in ("custom", "new") and (field in targets or not field):
        raise UsageError(f"column {source!r}: {field or 'nothing'!r} is not a custom field")
    if field in targets and (new_type or label):
        raise UsageError(f"column {source!r}: the built-in field {field!r} takes no type or label")
    if how == "new" and not new_type:
        new_type = "text"
    # A new custom field is labelled by its header unless the mapping says otherwise; a saved "user" choice keeps
    # its label as saved ("" for an existing custom field), so a saved mapping reads back equal.
    if (how == "new" or written_by_hand) and field and field not in targets and not label:
        label = _default_label(source, position)
    return ColumnChoice(source, position, field, how, new_type, label)


def _refuse_duplicates(choices: Sequence[ColumnChoice]) -> None:
    owner: dict[str, str] = {}
    for c in choices:
        if c.field and c.field in owner:
            raise UsageError(f"columns {owner[c.field]!r} and {c.source!r} both map to field {c.field!r}")
        owner[c.field] = c.source


def _default_key(choices: Sequence[ColumnChoice]) -> str:
    fields = {c.field for c in choices}
    # Without either column the check stage reports the missing key; "contact_no" names what is usually missing.
    return "email" if "contact_no" not in fields and "email" in fields else "contact_no"


# ---------------------------------------------------------------------------------------------------- suggestion


def _resolve_overrides(header: Sequence[str], overrides: Map[str, str]) -> dict[int, str]:
    """Position → field for the user's overrides; a key names a header cell as written or in normalised form."""
    out: dict[int, str] = {}
    for name, field in overrides.items():
        exact = [pos for pos, cell in enumerate(header) if cell == name]
        positions = exact or [
            pos for pos, cell in enumerate(header) if normalise_header(cell) == normalise_header(name)
        ]
        if not positions:
            raise UsageError(f"the override names column {name!r}, which the file does not have")
        for pos in positions:
            out[pos] = field
    return out


def _name_rule(
    header: Sequence[str], auto: dict[int, tuple[str, str] | None], overridden: dict[int, str]
) -> dict[int, tuple[str, str] | None]:
    """Apply the first/last-name rules to the automatic matches.

    - A bare "Nom" next to a "Prénom" column is the family name (French files have "Nom;Prénom" for last and first
      name), and so is a bare "Name" next to a "Vorname" column (German "Name;Vorname"); in English files "Name"
      beside "First Name" is as often the full name, so there it stays the name. This applies only when no other
      column is the name.
    - first_name/last_name are pseudo-targets for files without a name column (the check stage joins them into the
      name); when some column is the name, first and last name columns become custom fields instead.
    """
    auto = dict(auto)
    fields = {pos: (m[0] if m else None) for pos, m in auto.items()} | dict(overridden)
    first_names = {normalise_header(header[pos]) for pos, f in fields.items() if f == "first_name"}
    if first_names:
        name_cols = [pos for pos, f in fields.items() if f == "name"]
        bare = [
            pos
            for pos in name_cols
            if pos in auto
            and (
                normalise_header(header[pos]) == "nom"
                or (normalise_header(header[pos]) == "name" and "vorname" in first_names)
            )
        ]
        if bare and len(bare) == len(name_cols):
            for pos in bare:
                auto[pos] = ("last_name", "synonym")
                fields[pos] = "last_name"
    if "name" in fields.values():
        for pos, m in auto.items():
            if m is not None and m[0] in ("first_name", "last_name"):
                auto[pos] = None
    return auto


def suggest_mapping(
    header: Sequence[str],
    kind: str = "contacts",
    *,
    custom_fields: Map[str, str] | None = None,
    new_fields: str = "auto",
    overrides: Map[str, str] | None = None,
    new_types: Map[int, str] | None = None,
    key: str | None = None,
) -> Mapping:
    """Suggest what each column of a file with this header becomes.

    custom_fields: the existing custom fields (name → type); a column whose custom field name (custom_field_name of
    its header, or the common name of COMMON_CUSTOM_FIELDS: "Société" → "company") is one of them feeds it. new_fields: "auto" makes every other unmatched column a new custom field (typed by new_types[position], else
    text), "skip" leaves them out. overrides: header cell (as written or normalised) → field, "" to skip; they win
    over every automatic match. key: "contact_no" or "email"; by default contact_no if a column is mapped to it,
    else email if one is, else contact_no.
    """
    targets = _check_kind(kind)
    if new_fields not in ("auto", "skip"):
        raise UsageError(f"new_fields must be 'auto' or 'skip', not {new_fields!r}")
    existing = dict(custom_fields or {}) if kind == "contacts" else {}
    types = dict(new_types or {})
    for new_type in types.values():
        _check_type(new_type)
    if key is not None and key not in (KEYS if kind == "contacts" else ("contact_no",)):
        raise UsageError(
            f"a {kind} file is keyed by contact_no{' or email' if kind == 'contacts' else ''}, not {key!r}"
        )

    overridden = _resolve_overrides(header, overrides or {})
    owner: dict[str, int] = {}
    for pos in sorted(overridden):
        field = overridden[pos]
        if field not in existing:  # an existing custom field is valid by definition, whatever its name
            _check_field(kind, field)
        if field and field in owner:
            raise UsageError(
                f"columns {header[owner[field]]!r} and {header[pos]!r} both map to field {field!r}"
            )
        if field:
            owner[field] = pos

    auto = {pos: match_header(cell, kind) for pos, cell in enumerate(header) if pos not in overridden}
    if kind == "contacts":
        auto = _name_rule(header, auto, overridden)

    # Fields already used: the overrides' first, since they win over automatic matches of earlier columns.
    claimed: set[str] = set(owner)
    taken_names = set(_RESERVED) | set(existing) | claimed
    choices: list[ColumnChoice] = []
    for pos, cell in enumerate(header):
        if pos in overridden:
            field = overridden[pos]
            if field and field not in targets and field not in existing:
                choices.append(
                    ColumnChoice(cell, pos, field, "user", types.get(pos, "text"), _default_label(cell, pos))
                )
            else:
                choices.append(ColumnChoice(cell, pos, field, "user"))
            continue
        match = auto[pos]
        if match is not None and match[0] not in claimed:
            claimed.add(match[0])
            choices.append(ColumnChoice(cell, pos, match[0], match[1]))
            continue
        # Unmatched, or a later column for a field an earlier one took ("Phone 2" after "Phone 1").
        if kind != "contacts":
            choices.append(ColumnChoice(cell, pos, "", "skip"))
            continue
        name = _custom_name_for(cell)
        if name in existing and name not in claimed:
            claimed.add(name)
            choices.append(ColumnChoice(cell, pos, name, "custom"))
        elif new_fields == "auto":
            name = _unique_name(name, taken_names)
            taken_names.add(name)
            claimed.add(name)
            choices.append(
                ColumnChoice(cell, pos, name, "new", types.get(pos, "text"), _default_label(cell, pos))
            )
        else:
            choices.append(ColumnChoice(cell, pos, "", "skip"))
    return Mapping(kind, tuple(choices), key if key is not None else _default_key(choices))
