"""Demo data: a seeded, vectorised generator of realistic contacts and interactions (a million in a few seconds).

Everything is drawn from one numpy Generator, column by column, so the same seed and reference date always give the
same data. The data goes to the database through the importer's write path, and can be written as import CSV files.

Outcomes (ORDER with an amount, SIGNUP) cover the last 120 days, drawn from their own seeded Generator so contacts and
interactions stay what they were. With `logged_campaign`, load_demo also logs one demo segment 40 days before the
reference date with a 20 % holdout, and its contacted members order more in the 30 days after (about +4 points on a
base near 4-5 %): a real, moderate effect for the Results tab to show on first start.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import select

from ._db import Database
from ._errors import ImportRejected, NotFoundError, UsageError
from ._words import plural
from .auth.audit import record
from .auth.identity import current_user
from .auth.roles import require
from .imports.check import (
    CONTACT_COLUMNS,
    CONTACT_FRAME_COLUMNS,
    INTERACTION_COLUMNS,
    OUTCOME_COLUMNS,
    check_contacts_against_db,
)
from .imports.write import ContactBatch, Progress, write_contacts, write_interactions, write_outcomes

__all__ = [
    "DEMO_CAMPAIGN",
    "DEMO_LOGGED_SEGMENT",
    "DEMO_MAX_CONTACTS",
    "DemoData",
    "DemoSummary",
    "contacts_csv_frame",
    "contacts_csv_table",
    "generate_demo",
    "load_demo",
    "write_demo_csv",
]

DEMO_MAX_CONTACTS = 1_000_000
DEMO_CAMPAIGN = "DEMO-SPRING"
DEMO_LOGGED_SEGMENT = "DEMO-NEWSLETTER"
_OUTCOME_DAYS = 120  # outcome history: enough for the 90-day base rate and a 30-day window 40 days back
_ORDER_PER_DAY = 0.0014  # a contact's base chance of an order on a day, before its purchase history
_SIGNUP_PER_DAY = 0.0002
_LOG_AGE_DAYS = 40
_HOLDOUT_PCT = 20
_EFFECT = 0.04  # extra chance that a contacted member orders within 30 days of the log

# country: (weight, languages with shares, cities, dial code, web domain ending, territory)
_COUNTRIES: dict[str, tuple[float, dict[str, float], tuple[str, ...], str, str, str]] = {
    "FR": (
        0.22,
        {"fr": 0.97, "en": 0.03},
        ("Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Nantes", "Bordeaux", "Strasbourg"),
        "33",
        "fr",
        "WEST-EU",
    ),  # noqa: E501
    "DE": (
        0.17,
        {"de": 0.96, "en": 0.04},
        ("Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig"),
        "49",
        "de",
        "CENTRAL-EU",
    ),  # noqa: E501
    "BE": (
        0.07,
        {"fr": 0.45, "nl": 0.52, "de": 0.01, "en": 0.02},
        ("Bruxelles", "Antwerpen", "Gent", "Liège", "Namur", "Brugge"),
        "32",
        "be",
        "WEST-EU",
    ),  # noqa: E501
    "NL": (
        0.07,
        {"nl": 0.95, "en": 0.05},
        ("Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"),
        "31",
        "nl",
        "CENTRAL-EU",
    ),  # noqa: E501
    "ES": (
        0.08,
        {"es": 0.97, "en": 0.03},
        ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga"),
        "34",
        "es",
        "SOUTH-EU",
    ),  # noqa: E501
    "IT": (
        0.08,
        {"it": 0.97, "en": 0.03},
        ("Roma", "Milano", "Torino", "Napoli", "Bologna", "Firenze"),
        "39",
        "it",
        "SOUTH-EU",
    ),  # noqa: E501
    "GB": (
        0.09,
        {"en": 1.0},
        ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol", "Edinburgh"),
        "44",
        "co.uk",
        "UK-IE",
    ),  # noqa: E501
    "US": (
        0.08,
        {"en": 0.9, "es": 0.1},
        ("New York", "Chicago", "Boston", "Seattle", "Austin", "San Francisco", "Miami"),
        "1",
        "com",
        "NA",
    ),  # noqa: E501
    "CH": (
        0.04,
        {"de": 0.63, "fr": 0.25, "it": 0.08, "en": 0.04},
        ("Zürich", "Genève", "Basel", "Lausanne", "Bern", "Lugano"),
        "41",
        "ch",
        "CENTRAL-EU",
    ),  # noqa: E501
    "PL": (
        0.04,
        {"pl": 0.97, "en": 0.03},
        ("Warszawa", "Kraków", "Wrocław", "Gdańsk", "Poznań"),
        "48",
        "pl",
        "CENTRAL-EU",
    ),  # noqa: E501
    "PT": (0.02, {"pt": 0.97, "en": 0.03}, ("Lisboa", "Porto", "Braga", "Coimbra"), "351", "pt", "SOUTH-EU"),
    "AT": (0.02, {"de": 0.97, "en": 0.03}, ("Wien", "Graz", "Linz", "Salzburg"), "43", "at", "CENTRAL-EU"),
    "SE": (0.01, {"sv": 0.93, "en": 0.07}, ("Stockholm", "Göteborg", "Malmö"), "46", "se", "NORDIC"),
    "DK": (0.01, {"da": 0.93, "en": 0.07}, ("København", "Aarhus", "Odense"), "45", "dk", "NORDIC"),
}
_SALESPEOPLE = {
    "WEST-EU": ("ANNA", "LUC", "CLAIRE"),
    "CENTRAL-EU": ("JONAS", "EVA", "PIET"),
    "SOUTH-EU": ("MARCO", "LUCIA"),
    "UK-IE": ("OLIVER", "GRACE"),
    "NA": ("EMMA", "NOAH"),
    "NORDIC": ("FREJA",),
}
# language: (female first names, male first names, last names)
_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "fr": (
        ("Marie", "Camille", "Léa", "Chloé", "Manon", "Sophie", "Julie", "Inès"),
        ("Louis", "Hugo", "Lucas", "Jules", "Thomas", "Nicolas", "Julien", "Théo"),
        (
            "Martin",
            "Bernard",
            "Dubois",
            "Durand",
            "Lefèvre",
            "Moreau",
            "Laurent",
            "Girard",
            "Roux",
            "Fournier",
        ),
    ),  # noqa: E501
    "de": (
        ("Anna", "Lena", "Sophie", "Laura", "Julia", "Katrin", "Sabine", "Jana"),
        ("Lukas", "Jonas", "Felix", "Maximilian", "Paul", "Stefan", "Michael", "Tobias"),
        (
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Hoffmann",
            "Schäfer",
        ),
    ),  # noqa: E501
    "nl": (
        ("Emma", "Sanne", "Lotte", "Fleur", "Anouk", "Eva", "Iris", "Femke"),
        ("Daan", "Sem", "Lars", "Bram", "Jesse", "Thijs", "Ruben", "Pieter"),
        (
            "de Jong",
            "Jansen",
            "de Vries",
            "van Dijk",
            "Bakker",
            "Visser",
            "Smit",
            "Peeters",
            "Janssens",
            "Maes",
        ),
    ),  # noqa: E501
    "es": (
        ("Lucía", "María", "Paula", "Carmen", "Laura", "Marta", "Elena", "Sara"),
        ("Hugo", "Pablo", "Javier", "Carlos", "Diego", "Álvaro", "Daniel", "Miguel"),
        (
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Ruiz",
        ),
    ),  # noqa: E501
    "it": (
        ("Giulia", "Sofia", "Chiara", "Francesca", "Sara", "Martina", "Elena", "Alessia"),
        ("Marco", "Luca", "Alessandro", "Matteo", "Andrea", "Giuseppe", "Davide", "Simone"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco"),
    ),  # noqa: E501
    "en": (
        ("Olivia", "Emily", "Charlotte", "Jessica", "Sarah", "Hannah", "Grace", "Amelia"),
        ("James", "Oliver", "Jack", "Harry", "William", "Daniel", "Thomas", "Michael"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Miller", "Evans"),
    ),  # noqa: E501
    "pl": (
        ("Anna", "Zofia", "Maja", "Katarzyna", "Agnieszka", "Magdalena", "Ewa", "Natalia"),
        ("Jakub", "Jan", "Piotr", "Tomasz", "Paweł", "Krzysztof", "Michał", "Kacper"),
        (
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kowalczyk",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Woźniak",
        ),
    ),  # noqa: E501
    "pt": (
        ("Maria", "Ana", "Beatriz", "Inês", "Mariana", "Leonor", "Sofia", "Carolina"),
        ("João", "Rodrigo", "Tiago", "Pedro", "Miguel", "Diogo", "Rui", "Nuno"),
        (
            "Silva",
            "Santos",
            "Ferreira",
            "Pereira",
            "Oliveira",
            "Costa",
            "Rodrigues",
            "Martins",
            "Sousa",
            "Fernandes",
        ),
    ),  # noqa: E501
    "sv": (
        ("Alice", "Maja", "Elsa", "Astrid", "Ebba", "Ingrid"),
        ("Erik", "Lars", "Oskar", "Nils", "Axel", "Gustav"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson"),
    ),  # noqa: E501
    "da": (
        ("Freja", "Ida", "Mette", "Karen", "Sofie", "Line"),
        ("Mads", "Søren", "Rasmus", "Mikkel", "Frederik", "Anders"),
        ("Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen"),
    ),  # noqa: E501
}
_COMPANY_BASES = (
    "Contoso", "Fabrikam", "Northwind", "Adventure Works", "Tailspin", "Wide World Importers", "Litware", "Proseware",
    "Alpine Ski House", "Coho Winery", "Fourth Coffee", "Lucerne Publishing", "Margie's Travel", "Trey Research",
    "Woodgrove", "Blue Yonder", "City Power & Light", "Humongous Insurance", "Relecloud", "Southridge Video",
    "VanArsdel", "Wingtip Toys", "Consolidated Messenger", "Lamna Healthcare", "Nod Publishers", "Adatum",
    "Graphic Design Institute", "Best For You Organics", "Bellows College", "Tailwind Traders",
)  # fmt: skip
_LEGAL = {"FR": "SAS", "DE": "GmbH", "BE": "NV", "NL": "BV", "ES": "S.L.", "IT": "S.p.A.", "GB": "Ltd", "US": "Inc.",
          "CH": "AG", "PL": "Sp. z o.o.", "PT": "Lda", "AT": "GmbH", "SE": "AB", "DK": "A/S"}  # fmt: skip
_MAIL_DOMAINS = ("contoso.com", "fabrikam.com", "example.org", "example.net", "example.com", "mail.example")
_MAIL_DOMAIN_P = (0.22, 0.2, 0.18, 0.16, 0.14, 0.1)
_SOURCES = ("organic", "ads", "referral", "store", "event", "partner")
_SOURCES_PERSON_P = (0.31, 0.25, 0.16, 0.15, 0.08, 0.05)
_SOURCES_COMPANY_P = (0.22, 0.12, 0.2, 0.02, 0.2, 0.24)
_MAILING = ("NEWSLETTER", "PROMO", "EVENTS", "PRODUCT-NEWS", "VIP", "B2B-DIGEST")
_INDUSTRIES = (
    "RETAIL",
    "MANUFACTURING",
    "FINANCE",
    "HEALTHCARE",
    "TECH",
    "EDUCATION",
    "HOSPITALITY",
    "PUBLIC",
)
_INDUSTRY_P = (0.2, 0.18, 0.1, 0.1, 0.15, 0.07, 0.1, 0.1)
_JOBS = ("PURCHASING", "IT", "MARKETING", "SALES", "FINANCE", "MANAGEMENT", "HR", "OPERATIONS")
_JOB_P = (0.16, 0.16, 0.15, 0.15, 0.1, 0.12, 0.06, 0.1)
_INTERESTS = ("OUTDOOR", "TECH", "FASHION", "HOME", "TRAVEL", "FOOD", "SPORTS")
_TEMPLATES = ("EMAIL", "CALL", "MEETING", "LETTER")
_EVALUATIONS = ("very_positive", "positive", "neutral", "negative", "very_negative")


@dataclass(frozen=True, eq=False)
class DemoData:
    """Generated contacts (as the importer's ContactBatch), their interactions (INTERACTION_COLUMNS) and their
    outcomes (OUTCOME_COLUMNS)."""

    batch: ContactBatch
    interactions: pd.DataFrame
    today: dt.date
    outcomes: pd.DataFrame | None = None


@dataclass(frozen=True)
class DemoSummary:
    """What load_demo wrote."""

    contacts: int
    companies: int
    interactions: int
    inserted: int
    updated: int
    seed: int
    today: dt.date
    outcomes: int = 0
    logged_segment: str | None = None  # the demo segment logged with a holdout, when load_demo logged one

    def as_dict(self) -> dict[str, object]:
        return {
            "contacts": self.contacts,
            "companies": self.companies,
            "interactions": self.interactions,
            "outcomes": self.outcomes,
            "logged_segment": self.logged_segment,
            "inserted": self.inserted,
            "updated": self.updated,
            "seed": self.seed,
            "today": self.today.isoformat(),
        }


def _ascii_slug(text: str, sep: str = "") -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = "".join(ch if ch.isalnum() else " " for ch in folded).split()
    return sep.join(words)


# Strings are assembled with pyarrow kernels from small label lists and integer ids: building a million Python
# strings one by one would take longer than writing them to the database.


def _pick(rng: np.random.Generator, n: int, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """n indices drawn with probabilities p (normalised)."""
    weights = np.asarray(p, dtype=float)
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def _take(labels: Sequence[str], idx: np.ndarray | Sequence[int]) -> pa.Array:
    return pa.array(list(labels), type=pa.large_string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _num(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.large_string())


def _cat(*parts: pa.Array | str) -> pa.Array:
    args = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def _when(mask: np.ndarray, yes: pa.Array | str, no: pa.Array | str = "") -> pa.Array:
    a = pa.scalar(yes, pa.large_string()) if isinstance(yes, str) else yes
    b = pa.scalar(no, pa.large_string()) if isinstance(no, str) else no
    out = pc.if_else(pa.array(np.asarray(mask, dtype=bool)), a, b)
    if isinstance(out, pa.Scalar):
        return pa.array([out.as_py()] * len(mask), type=pa.large_string())
    return out


def _dates(today: dt.date, days_ago: np.ndarray) -> pa.Array:
    epoch = (today - dt.date(1970, 1, 1)).days
    days = pa.array((epoch - np.asarray(days_ago, dtype=np.int64)).astype(np.int32)).cast(pa.date32())
    return pc.cast(days, pa.large_string())


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """0 for the first row of each key, 1 for the second one, ... (in row order)."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    starts = np.r_[True, ranked[1:] != ranked[:-1]] if len(keys) else np.zeros(0, dtype=bool)
    pos = np.arange(len(keys))
    first = np.maximum.accumulate(np.where(starts, pos, 0)) if len(keys) else pos
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = pos - first
    return out


def _str(arr: pa.Array) -> pd.Series:
    return pd.Series(arr.to_pandas(), dtype="str")


def generate_demo(n: int, *, seed: int = 7, today: dt.date | None = None) -> DemoData:
    """n realistic contacts (about 15% companies) with list codes, profile answers and ~2 interactions each."""
    if n < 0 or n > DEMO_MAX_CONTACTS:
        raise UsageError(f"demo data holds 0 to {DEMO_MAX_CONTACTS:,} contacts, not {n:,}")
    today = today or dt.date.today()
    rng = np.random.default_rng(seed)

    # Structure: companies, each followed by its persons, and standalone persons, in shuffled blocks.
    n_comp = int(round(n * 0.15)) if n >= 3 else 0
    sizes = np.minimum(rng.geometric(0.3, n_comp), 20)
    budget = n - n_comp
    # With few contacts the persons of the last companies would not fit: those companies keep fewer persons.
    allowed = np.clip(budget - (np.cumsum(sizes) - sizes), 0, None)
    sizes = np.minimum(sizes, allowed)
    n_alone = n - n_comp - int(sizes.sum())
    block_size = np.concatenate([1 + sizes, np.ones(n_alone, dtype=np.int64)]).astype(np.int64)
    block_is_company = np.concatenate([np.ones(n_comp, dtype=bool), np.zeros(n_alone, dtype=bool)])
    order = rng.permutation(len(block_size))
    ordered_sizes = block_size[order]
    block_start = np.concatenate(([0], np.cumsum(ordered_sizes)[:-1])).astype(np.int64)
    pos_block = np.repeat(np.arange(len(order)), ordered_sizes)
    offset = np.arange(n) - block_start[pos_block]
    in_company_block = block_is_company[order][pos_block]
    is_company = in_company_block & (offset == 0)
    is_person = ~is_company
    org_pos = np.where(in_company_block, block_start[pos_block], -1)
    org = np.maximum(org_pos, 0)
    employed = is_person & (org_pos >= 0)
    alone = is_person & ~employed
    company_idx = np.flatnonzero(is_company)

    width = max(6, len(str(n)))
    contact_no = _cat("CT", pc.utf8_lpad(_num(np.arange(1, n + 1)), width=width, padding="0"))
    company_no = _when(employed, contact_no.take(pa.array(org)))

    # Place: a company's persons mostly share its country and city.
    codes = list(_COUNTRIES)
    country_i = _pick(rng, n, [_COUNTRIES[c][0] for c in codes])
    same_country = employed & (rng.random(n) < 0.9)
    country_i = np.where(same_country, country_i[org], country_i)
    lang_labels = sorted({lang for c in codes for lang in _COUNTRIES[c][1]})
    city_labels = [city for c in codes for city in _COUNTRIES[c][2]]
    terr_labels = sorted(_SALESPEOPLE)
    sales_labels = [sp for t in terr_labels for sp in _SALESPEOPLE[t]]
    lang_i = np.zeros(n, dtype=np.int64)
    city_i = np.zeros(n, dtype=np.int64)
    sales_i = np.zeros(n, dtype=np.int64)
    city_base = 0
    for i, code in enumerate(codes):
        _w, langs, cities, _dial, _ending, terr = _COUNTRIES[code]
        m = country_i == i
        k = int(m.sum())
        if k:
            lang_i[m] = np.array([lang_labels.index(x) for x in langs])[_pick(rng, k, list(langs.values()))]
            city_p = 1.0 / np.arange(1, len(cities) + 1) ** 0.8
            city_i[m] = city_base + _pick(rng, k, city_p)
            first_sales = sales_labels.index(_SALESPEOPLE[terr][0])
            sales_i[m] = first_sales + rng.integers(0, len(_SALESPEOPLE[terr]), k)
        city_base += len(cities)
    same_city = employed & same_country & (rng.random(n) < 0.7)
    city_i = np.where(same_city, city_i[org], city_i)
    sales_i = np.where(employed, sales_i[org], sales_i)
    country = _take(codes, country_i)
    language = _take(lang_labels, lang_i)
    city = _take(city_labels, city_i)
    territory = _take(terr_labels, [terr_labels.index(_COUNTRIES[c][5]) for c in codes]).take(
        pa.array(country_i)
    )
    salesperson = _when(~(alone & (rng.random(n) < 0.4)), _take(sales_labels, sales_i))
    dial = _take([_COUNTRIES[c][3] for c in codes], country_i)
    phone = _when(rng.random(n) < 0.85, _cat("+", dial, " ", _num(rng.integers(100_000_000, 999_999_999, n))))
    post_code = _post_codes(rng, country_i, codes, n)

    # People: gender, names by language, ages.
    gender_i = _pick(rng, n, (0.49, 0.47, 0.01, 0.03))
    gender_i[is_company] = 3
    gender = _take(("female", "male", "other", "unknown"), gender_i)
    firsts: list[str] = []
    lasts: list[str] = []
    first_i = np.zeros(n, dtype=np.int64)
    last_i = np.zeros(n, dtype=np.int64)
    for li, lang in enumerate(lang_labels):
        female, male, surnames = _NAMES[lang]
        m = lang_i == li
        k = int(m.sum())
        is_f = (gender_i[m] == 0) | ((gender_i[m] >= 2) & (rng.random(k) < 0.5))
        f_i = len(firsts) + rng.integers(0, len(female), k)
        m_i = len(firsts) + len(female) + rng.integers(0, len(male), k)
        first_i[m] = np.where(is_f, f_i, m_i)
        last_i[m] = len(lasts) + rng.integers(0, len(surnames), k)
        firsts += [*female, *male]
        lasts += list(surnames)
    name = _cat(_take(firsts, first_i), " ", _take(lasts, last_i))

    # Companies: a name from a base, the city and the legal form; a web domain of their own.
    base_i = rng.integers(0, len(_COMPANY_BASES), n)
    same_name = _occurrence(base_i[company_idx] * len(city_labels) + city_i[company_idx])
    dup_no = np.zeros(n, dtype=np.int64)
    dup_no[company_idx] = same_name
    suffix = _when(dup_no > 0, _num(dup_no + 1))
    legal = _take([_LEGAL[c] for c in codes], country_i)
    company_name = _cat(
        _take(_COMPANY_BASES, base_i), " ", city, _when(dup_no > 0, _cat(" ", suffix)), " ", legal
    )
    name = _when(is_company, company_name, name)
    tld = _take([_COUNTRIES[c][4] for c in codes], country_i)
    domain = _cat(
        _take([_ascii_slug(b, "-") for b in _COMPANY_BASES], base_i),
        "-",
        _take([_ascii_slug(c, "-") for c in city_labels], city_i),
        suffix,
        ".",
        tld,
    )

    # E-mails: unique and lower-case; persons of a company mostly use its domain.
    general_i = _pick(rng, n, _MAIL_DOMAIN_P)
    use_company = is_company | (employed & (rng.random(n) < 0.75))
    domain_id = np.where(
        use_company, len(_MAIL_DOMAINS) + org_pos.clip(0) + is_company * np.arange(n), general_i
    )
    mail_domain = _when(use_company, domain.take(pa.array(np.where(is_company, np.arange(n), org))),
                        _take(_MAIL_DOMAINS, general_i))  # fmt: skip
    name_key = np.where(is_company, -1, first_i * len(lasts) + last_i)
    again = _occurrence((name_key + 1) * (len(_MAIL_DOMAINS) + n + 1) + domain_id)
    local = _cat(
        _take([_ascii_slug(x) for x in firsts], first_i), ".", _take([_ascii_slug(x) for x in lasts], last_i)
    )
    local = _when(is_company, "contact", local)
    local = _cat(local, _when(again > 0, _num(again + 1)))
    has_mail = np.where(is_company, rng.random(n) < 0.85, rng.random(n) < 0.92)
    email = _when(has_mail, _cat(local, "@", mail_domain))
    email_domain = _when(has_mail, mail_domain)

    # Ages: birth dates 1940-2008 around a realistic adult customer base.
    young = rng.random(n) < 0.12
    age = np.where(young, rng.uniform(17, 26, n), rng.normal(45, 14, n))
    birth_days_ago = (age * 365.25 + rng.integers(0, 365, n)).astype(np.int64)
    lo_days = (today - dt.date(2008, 12, 31)).days
    hi_days = (today - dt.date(1940, 1, 1)).days
    birth_days_ago = np.clip(birth_days_ago, max(lo_days, 0), max(hi_days, 0))
    has_birth = is_person & (rng.random(n) < 0.93)
    birth_date = _when(has_birth, _dates(today, birth_days_ago))

    # Customer history: acquisition, purchases, spend, recency, churn.
    source_i = np.where(is_company, _pick(rng, n, _SOURCES_COMPANY_P), _pick(rng, n, _SOURCES_PERSON_P))
    acq_days = np.floor(8 * 365 * rng.random(n) ** 1.4).astype(np.int64)
    purchases = rng.geometric(0.38, n) - 1
    heavy = rng.random(n) < 0.04
    purchases = purchases + np.where(heavy, (rng.pareto(1.3, n) * 8).astype(np.int64), 0)
    purchases = np.where(is_company, purchases * 2, purchases)
    purchases = np.minimum(purchases, 400).astype(np.int64)
    basket = rng.lognormal(np.log(45), 0.7, n) * np.where(is_company, 6.0, 1.0)
    total_spent = np.round(purchases * basket * rng.lognormal(0, 0.25, n), 2)
    since = np.floor(acq_days * rng.random(n) ** (1 + 0.6 * purchases)).astype(np.int64)
    churn = np.where(since < 120, 0, np.where(since < 365, 1, 2))
    churn = np.where(purchases == 0, np.where(acq_days < 180, 1, 2), churn)
    churn = np.where(rng.random(n) < 0.12, rng.integers(0, 3, n), churn)
    churn_risk = _when(rng.random(n) >= 0.06, _take(("low", "medium", "high"), churn))
    rating = pd.array(rng.choice(np.arange(1, 6), size=n, p=(0.04, 0.08, 0.22, 0.38, 0.28)), dtype="Int64")
    rating[rng.random(n) < 0.3] = pd.NA
    exclude = rng.random(n) < 0.02
    empty = pa.array([""] * 1, type=pa.large_string()).take(pa.array(np.zeros(n, dtype=np.int64)))

    columns: dict[str, object] = {
        "contact_no": _str(contact_no),
        "type": _str(_take(("person", "company"), is_company.astype(np.int64))),
        "company_no": _str(company_no),
        "name": _str(name),
        "email": _str(email),
        "email_domain": _str(email_domain),
        "phone": _str(phone),
        "city": _str(city),
        "post_code": _str(post_code),
        "territory": _str(territory),
        "salesperson": _str(salesperson),
        "country": _str(country),
        "language": _str(language),
        "gender": _str(gender),
        "birth_date": _str(birth_date),
        "acquisition_date": _str(_dates(today, acq_days)),
        "last_purchase_date": _str(_when(purchases > 0, _dates(today, since))),
        "acquisition_source": _str(_take(_SOURCES, source_i)),
        "rating": rating,
        "churn_risk": _str(churn_risk),
        "total_spent": total_spent.astype(float),
        "purchase_count": purchases,
        "exclude_from_segments": exclude,
        "attributes": _str(empty),
    }
    contacts = pd.DataFrame({k: columns[k] for k in CONTACT_FRAME_COLUMNS})
    codes_frame = _codes(rng, n, contact_no, is_company, employed, org, total_spent)
    profile = _profile(rng, n, contact_no, is_person, churn)
    interactions = _interactions(rng, n, contact_no, is_company, employed, purchases, salesperson, today)
    # Their own Generator: adding outcomes left every contact and interaction of a seed as it was.
    outcomes = _outcomes(np.random.default_rng([seed, 14]), n, contact_no, is_company, purchases, today, seed)
    return DemoData(ContactBatch(contacts, codes_frame, profile), interactions, today, outcomes)


def _post_codes(rng: np.random.Generator, country_i: np.ndarray, codes: list[str], n: int) -> pa.Array:
    def country(code: str) -> np.ndarray:
        return country_i == codes.index(code)

    digits5 = pc.utf8_lpad(_num(rng.integers(1_000, 99_999, n)), width=5, padding="0")
    digits4 = _num(rng.integers(1_000, 9_999, n))
    letters = list("ABCDEFGHJKLMNPRSTUVWXYZ")
    two = _cat(
        _take(letters, rng.integers(0, len(letters), n)), _take(letters, rng.integers(0, len(letters), n))
    )
    out = digits5
    out = _when(np.isin(country_i, [codes.index(c) for c in ("BE", "CH", "AT", "DK")]), digits4, out)
    out = _when(country("NL"), _cat(digits4, " ", two), out)
    out = _when(country("GB"), _cat(two, _num(rng.integers(1, 20, n)), " ", digits4), out)
    out = _when(
        country("PL"),
        _cat(pc.utf8_slice_codeunits(digits5, 0, 2), "-", pc.utf8_slice_codeunits(digits5, 2, 5)),
        out,
    )
    out = _when(country("PT"), _cat(digits4, "-", _num(rng.integers(100, 999, n))), out)
    return _when(rng.random(n) >= 0.1, out)


def _long(contact_no: pa.Array, matrix: np.ndarray, labels: Sequence[str], kind: str) -> pd.DataFrame:
    rows, cols = np.nonzero(matrix)
    return pd.DataFrame(
        {
            "contact_no": _str(contact_no.take(pa.array(rows))),
            "pos": rows.astype(np.int64),
            "kind": pd.Series(kind, index=range(len(rows)), dtype="str"),
            "code": _str(_take(labels, cols)),
        }
    )


def _codes(
    rng: np.random.Generator,
    n: int,
    contact_no: pa.Array,
    is_company: np.ndarray,
    employed: np.ndarray,
    org: np.ndarray,
    total_spent: np.ndarray,
) -> pd.DataFrame:
    business = is_company | employed
    p = np.array([0.45, 0.3, 0.12, 0.15, 0.03, 0.0])
    mailing = rng.random((n, len(_MAILING))) < p
    if n:
        mailing[:, 4] |= (total_spent > np.quantile(total_spent, 0.95)) & (rng.random(n) < 0.6)
    mailing[:, 5] = business & (rng.random(n) < 0.35)
    primary = _pick(rng, n, _INDUSTRY_P)
    primary = np.where(employed, primary[org], primary)
    industry = np.zeros((n, len(_INDUSTRIES)), dtype=bool)
    has_industry = is_company | (employed & (rng.random(n) < 0.7))
    industry[np.flatnonzero(has_industry), primary[has_industry]] = True
    second = is_company & (rng.random(n) < 0.2)
    industry[np.flatnonzero(second), _pick(rng, int(second.sum()), _INDUSTRY_P)] = True
    jobs = np.zeros((n, len(_JOBS)), dtype=bool)
    has_job = employed & (rng.random(n) < 0.9)
    jobs[np.flatnonzero(has_job), _pick(rng, int(has_job.sum()), _JOB_P)] = True
    second_job = has_job & (rng.random(n) < 0.25)
    jobs[np.flatnonzero(second_job), _pick(rng, int(second_job.sum()), _JOB_P)] = True
    frames = [
        _long(contact_no, mailing, _MAILING, "mailing_groups"),
        _long(contact_no, industry, _INDUSTRIES, "industry_groups"),
        _long(contact_no, jobs, _JOBS, "job_responsibilities"),
    ]
    return pd.concat(frames, ignore_index=True)


def _answers(contact_no: pa.Array, rows: np.ndarray, questionnaire: str, answers: pa.Array) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_no": _str(contact_no.take(pa.array(rows))),
            "pos": np.asarray(rows, dtype=np.int64),
            "questionnaire": pd.Series(questionnaire, index=range(len(rows)), dtype="str"),
            "answer": _str(answers),
        }
    )


def _profile(
    rng: np.random.Generator, n: int, contact_no: pa.Array, is_person: np.ndarray, churn: np.ndarray
) -> pd.DataFrame:
    # Unhappy customers churn: the satisfaction answer leans on the churn risk.
    sat = np.flatnonzero(rng.random(n) < 0.4)
    sat_p = np.array([[0.65, 0.3, 0.05], [0.45, 0.4, 0.15], [0.25, 0.4, 0.35]])
    cum = np.cumsum(sat_p[churn], axis=1)
    sat_i = (rng.random(n)[:, None] > cum).sum(axis=1)
    interest = (rng.random((n, len(_INTERESTS))) < np.array([0.2, 0.22, 0.15, 0.14, 0.18, 0.12, 0.16])) & (
        is_person & (rng.random(n) < 0.6)
    )[:, None]
    rows, cols = np.nonzero(interest)
    channel = np.flatnonzero(rng.random(n) < 0.3)
    parts = [
        _answers(contact_no, sat, "CUSTSAT", _take(("HIGH", "MED", "LOW"), np.minimum(sat_i[sat], 2))),
        _answers(contact_no, rows, "INTEREST", _take(_INTERESTS, cols)),
        _answers(
            contact_no,
            channel,
            "CHANNEL",
            _take(("EMAIL", "PHONE", "POST", "SMS"), _pick(rng, len(channel), (5, 2, 1, 2))),
        ),
    ]
    return pd.concat(parts, ignore_index=True)


def _interactions(
    rng: np.random.Generator,
    n: int,
    contact_no: pa.Array,
    is_company: np.ndarray,
    employed: np.ndarray,
    purchases: np.ndarray,
    salesperson: pa.Array,
    today: dt.date,
) -> pd.DataFrame:
    lam = (1.3 + 0.3 * np.minimum(purchases, 6)) * np.where(is_company, 1.4, 1.0)
    counts = rng.poisson(lam)
    who = np.repeat(np.arange(n), counts)
    m = len(who)
    business = (is_company | employed)[who]
    t = np.where(business, _pick(rng, m, (0.45, 0.25, 0.15, 0.15)), _pick(rng, m, (0.7, 0.08, 0.02, 0.2)))
    # Two years back, denser recently: about one interaction in eight falls in the last 30 days.
    days_ago = np.floor(730 * rng.random(m) ** 1.6).astype(np.int64)
    # One contact's interactions in date order, oldest first.
    order = np.lexsort((-days_ago, who))
    who, t, days_ago = who[order], t[order], days_ago[order]
    date = _dates(today, days_ago)
    campaign = _cat("CP-", pc.utf8_slice_codeunits(date, 0, 7))
    campaign_no = _when(rng.random(m) < np.array([0.75, 0.2, 0.2, 0.7])[t], campaign)
    evaluation = _when(
        rng.random(m) < np.array([0.3, 0.7, 0.9, 0.1])[t],
        _take(_EVALUATIONS, _pick(rng, m, (0.12, 0.33, 0.35, 0.14, 0.06))),
    )
    personal = (t == 1) | (t == 2)
    sp = salesperson.take(pa.array(who))
    sp = _when(pc.equal(sp, "").to_numpy(zero_copy_only=False), "ANNA", sp)
    cost = np.select(
        [t == 0, t == 1, t == 2, t == 3],
        [np.full(m, 0.05), rng.uniform(2, 15, m), rng.uniform(40, 300, m), rng.uniform(0.9, 1.6, m)],
    ).round(2)
    duration = pd.array(
        np.where(t == 1, rng.integers(2, 36, m), np.where(t == 2, rng.integers(30, 121, m), 0)), dtype="Int64"
    )
    duration[~personal] = pd.NA
    columns: dict[str, object] = {
        "contact_no": _str(contact_no.take(pa.array(who))),
        "date": _str(date),
        "template": _str(_take(_TEMPLATES, t)),
        "campaign_no": _str(campaign_no),
        "segment_no": pd.Series("", index=range(m), dtype="str"),
        "evaluation": _str(evaluation),
        "salesperson": _str(_when(personal, sp)),
        "cost": cost.astype(float),
        "duration_min": duration,
    }
    return pd.DataFrame({k: columns[k] for k in INTERACTION_COLUMNS})


def _outcomes(
    rng: np.random.Generator,
    n: int,
    contact_no: pa.Array,
    is_company: np.ndarray,
    purchases: np.ndarray,
    today: dt.date,
    seed: int,
) -> pd.DataFrame:
    """Orders (with amounts) and sign-ups over the last _OUTCOME_DAYS days; buyers of the past order more."""
    order_rate = _ORDER_PER_DAY * (0.5 + 0.25 * np.minimum(purchases, 6)) * np.where(is_company, 1.5, 1.0)
    orders = rng.poisson(order_rate * _OUTCOME_DAYS)
    signups = rng.poisson(np.full(n, _SIGNUP_PER_DAY * _OUTCOME_DAYS))
    who = np.concatenate([np.repeat(np.arange(n), orders), np.repeat(np.arange(n), signups)])
    kind = np.concatenate([np.zeros(int(orders.sum()), dtype=np.int64), np.ones(int(signups.sum()), dtype=np.int64)])
    m = len(who)
    days_ago = rng.integers(0, _OUTCOME_DAYS, m)
    basket = rng.lognormal(np.log(45), 0.7, m) * np.where(is_company[who], 6.0, 1.0)
    amount = np.where(kind == 0, np.round(basket, 2), np.nan)
    return _outcome_frame(contact_no, who, days_ago, kind, amount, today, f"DEMO{seed}-")


def _outcome_frame(
    contact_no: pa.Array,
    who: np.ndarray,
    days_ago: np.ndarray,
    kind: np.ndarray,
    amount: np.ndarray,
    today: dt.date,
    prefix: str,
) -> pd.DataFrame:
    # A reference per outcome: loading the same demo again updates these outcomes instead of counting them twice.
    reference = _cat(prefix, pc.utf8_lpad(_num(np.arange(1, len(who) + 1)), width=8, padding="0"))
    return pd.DataFrame(
        {
            "contact_no": _str(contact_no.take(pa.array(who))),
            "date": _str(_dates(today, days_ago)),
            "kind": _str(_take(("ORDER", "SIGNUP"), kind)),
            "amount": amount.astype(float),
            "reference": _str(reference),
        }
    )


def _log_demo_campaign(db: Database, seed: int, today: dt.date, user: str) -> tuple[str | None, pd.DataFrame | None]:
    """Log the demo segment 40 days ago with a holdout; return its number and the extra orders of its contacted
    members (a real, moderate lift), for the caller to write with the other outcomes.

    Returns (None, None) when the segment exists already, or when it cannot be logged (too few contacts, or a
    database whose settings ask for approval first): then nothing it made is left behind.

    The extra orders are not written here: every write of outcomes reads the contact numbers of all stored
    contacts first (a second write cost about 1.5 s at 100,000 contacts), so they go in the same write as the
    demo's other outcomes."""
    from ._engine import ActionRequest, apply_action, create_segment, delete_segment
    from ._filter_tree import from_json
    from ._lifecycle import create_campaign, delete_campaign, get_campaign, log_refusal, log_segment
    from ._models import Contact, LoggedSegment, LoggedSegmentMember, Segment, table_of

    segments = table_of(Segment)
    with db.read() as conn:
        if conn.execute(select(segments.c.id).where(segments.c.no == DEMO_LOGGED_SEGMENT)).first() is not None:
            return None, None
    made_campaign = False
    try:
        get_campaign(db, DEMO_CAMPAIGN)
    except NotFoundError:
        create_campaign(
            db, DEMO_CAMPAIGN, description="Spring newsletter (demo)", start_date=today - dt.timedelta(days=45),
            end_date=today - dt.timedelta(days=10), status="completed", user=user,
        )
        made_campaign = True
    create_segment(
        db, DEMO_LOGGED_SEGMENT, description="Newsletter readers in France, Germany and Belgium (demo)",
        campaign_no=DEMO_CAMPAIGN, owner="demo", user=user,
    )
    where = from_json({"all": [
        {"field": "mailing_groups", "op": "has_any", "value": ["NEWSLETTER"]},
        {"field": "country", "op": "in", "value": ["FR", "DE", "BE"]},
    ]})  # fmt: skip
    apply_action(db, DEMO_LOGGED_SEGMENT, ActionRequest("add", where), user=user, today=today)
    if log_refusal(db, DEMO_LOGGED_SEGMENT) is not None:
        # A small demo (under the minimum segment size) or approval required: no half-made demo campaign stays.
        delete_segment(db, DEMO_LOGGED_SEGMENT, user=user)
        if made_campaign:
            delete_campaign(db, DEMO_CAMPAIGN, user=user)
        return None, None
    day = today - dt.timedelta(days=_LOG_AGE_DAYS)
    log_segment(
        db, DEMO_LOGGED_SEGMENT, template="EMAIL", date=day, user=user, holdout_pct=_HOLDOUT_PCT,
        seed=seed % (2**31 - 1),
    )
    members, contacts, logged = table_of(LoggedSegmentMember), table_of(Contact), table_of(LoggedSegment)
    with db.read() as conn:
        treated = list(
            conn.execute(
                select(contacts.c.contact_no)
                .join(members, members.c.contact_id == contacts.c.id)
                .join(logged, logged.c.id == members.c.logged_id)
                .where(logged.c.segment_no == DEMO_LOGGED_SEGMENT, members.c.holdout.is_(False))
                .order_by(contacts.c.contact_no)
            ).scalars()
        )
    rng = np.random.default_rng([seed, 14, 2])
    buys = rng.random(len(treated)) < _EFFECT
    who = np.flatnonzero(buys)
    after = rng.integers(1, 31, len(who))
    basket = np.round(rng.lognormal(np.log(45), 0.7, len(who)), 2)
    frame = _outcome_frame(
        pa.array(treated, type=pa.large_string()), who, _LOG_AGE_DAYS - after, np.zeros(len(who), dtype=np.int64),
        basket, today, f"DEMO{seed}-C",
    )
    return DEMO_LOGGED_SEGMENT, frame


def load_demo(
    db: Database,
    n: int,
    *,
    seed: int = 7,
    today: dt.date | None = None,
    progress: Progress | None = None,
    logged_campaign: bool = False,
    user: str | None = None,
) -> DemoSummary:
    """Generate n demo contacts with their interactions and outcomes and write them through the importer's write path.

    With `logged_campaign`, also log the demo campaign's segment with a holdout (see the module). The log needs the
    contacts stored, so the outcomes (the demo's and the logged campaign's extra orders together, one write) then go
    in a second transaction, after the log. Demo data is an import: `user` (default: the current user) needs the
    admin role once accounts exist, and the demo campaign's steps are theirs in the audit trail."""
    user = user if user is not None else current_user()
    data = generate_demo(n, seed=seed, today=today)
    contacts = data.batch.contacts
    outcomes = data.outcomes if data.outcomes is not None else pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    with db.write() as conn:
        require(conn, user, "import")
        lines = np.arange(2, len(contacts) + 2, dtype=np.int64)
        valid, errors, _existing = check_contacts_against_db(
            conn, contacts, lines, np.ones(len(contacts), bool)
        )
        if not valid.all():
            first = errors.iloc[0]
            raise ImportRejected(
                f"demo data does not fit the stored contacts: {first['column']} {first['value']} {first['reason']}"
            )
        inserted, updated = write_contacts(conn, data.batch, progress=progress)
        count = write_interactions(conn, data.interactions, created_by="demo", progress=progress)
        if not logged_campaign:
            new_outcomes, _ = write_outcomes(conn, outcomes, created_by="demo", progress=progress)
        record(conn, user, "data.demo", "contacts",
               f"demo data: {plural(len(contacts), 'contact')} (seed {seed}), {plural(count, 'interaction')}",
               after=f"{inserted:,} new, {updated:,} updated")  # fmt: skip
    logged_no = None
    if logged_campaign:
        logged_no, extra = _log_demo_campaign(db, seed, data.today, user)
        if extra is not None and len(extra):
            outcomes = pd.concat([outcomes, extra], ignore_index=True)
        with db.write() as conn:
            new_outcomes, _ = write_outcomes(conn, outcomes, created_by="demo", progress=progress)
    return DemoSummary(
        contacts=len(contacts),
        companies=int((contacts["type"] == "company").sum()),
        interactions=count,
        inserted=inserted,
        updated=updated,
        seed=seed,
        today=data.today,
        outcomes=new_outcomes,
        logged_segment=logged_no,
    )


def _text(values: pd.Series | pa.Array) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    if pa.types.is_floating(arr.type):
        arr = pc.cast(pc.round(arr, 2), pa.decimal128(16, 2))
    return pc.fill_null(pc.cast(arr, pa.large_string()), "")


def _joined(contact_no: pd.Series, keys: pd.Series, values: pd.Series | pa.Array) -> pa.Array:
    """Per contact, its values joined with ';' (in batch order), '' when it has none."""
    n = len(contact_no)
    pos = pd.Index(contact_no.to_numpy()).get_indexer(keys.to_numpy())
    order = np.argsort(pos, kind="stable")
    counts = np.bincount(pos, minlength=n)
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int64))
    vals = (values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string())).take(
        pa.array(order)
    )
    return pc.binary_join(
        pa.LargeListArray.from_arrays(offsets, pc.cast(vals, pa.large_string())),
        pa.scalar(";", pa.large_string()),
    )


def contacts_csv_table(batch: ContactBatch) -> pa.Table:
    """The contacts of a batch in the import file format (CONTACT_COLUMNS, lists joined with ';')."""
    c = batch.contacts
    columns: dict[str, pa.Array] = {}
    for col in CONTACT_COLUMNS:
        if col in c.columns and col != "exclude_from_segments":
            columns[col] = _text(c[col])
    columns["exclude_from_segments"] = _take(
        ("false", "true"), c["exclude_from_segments"].to_numpy().astype(np.int64)
    )
    for kind in ("mailing_groups", "industry_groups", "job_responsibilities"):
        part = batch.codes[batch.codes["kind"] == kind]
        columns[kind] = _joined(c["contact_no"], part["contact_no"], part["code"])
    pairs = _cat(pa.array(batch.profile["questionnaire"], type=pa.large_string()), "=",
                 pa.array(batch.profile["answer"], type=pa.large_string()))  # fmt: skip
    columns["profile"] = _joined(c["contact_no"], batch.profile["contact_no"], pairs)
    return pa.table({col: columns[col] for col in CONTACT_COLUMNS})


def contacts_csv_frame(batch: ContactBatch) -> pd.DataFrame:
    """The contacts of a batch in the import file format, as a pandas frame of text."""
    return contacts_csv_table(batch).to_pandas()


def write_demo_csv(
    directory: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 7,
    today: dt.date | None = None,
) -> tuple[Path, Path]:
    """Write n demo contacts and their interactions as import files; returns (contacts.csv, interactions.csv)."""
    data = generate_demo(n, seed=seed, today=today)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    contacts_path = folder / "contacts.csv"
    interactions_path = folder / "interactions.csv"
    _write_csv(contacts_csv_table(data.batch), contacts_path)
    inter = data.interactions
    _write_csv(pa.table({col: _text(inter[col]) for col in INTERACTION_COLUMNS}), interactions_path)
    return contacts_path, interactions_path


def _write_csv(table: pa.Table, path: Path) -> None:
    # Quotes only where a value needs them, as spreadsheets write CSV; pyarrow's own "needed" quotes every text.
    try:
        pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))
    except pa.ArrowInvalid:
        pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
