"""Test data written straight to the tables with Core inserts (independent of the importer under test)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from segcore._db import Database
from segcore._models import Contact, ContactCode
from segcore._snapshot import bump_data_version

contacts = Contact.__table__

DEFAULTS: dict[str, Any] = {
    "company_no": None,
    "email": None,
    "country": None,
    "gender": "unknown",
    "total_spent": 0,
    "purchase_count": 0,
    "exclude_from_segments": False,
}


def add_contacts(db: Database, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert contacts (companies first is not required) and resolve org_id; returns contact_no -> id."""
    codes: list[dict[str, Any]] = []
    with db.write() as conn:
        for row in rows:
            values = {**DEFAULTS, **{k: v for k, v in row.items() if k not in ("mailing_groups",)}}
            if values.get("email"):
                values["email"] = values["email"].lower()
                values["email_domain"] = values["email"].split("@", 1)[1]
            conn.execute(insert(contacts).values(**values))
        ids = dict(conn.execute(select(contacts.c.contact_no, contacts.c.id)).all())
        for row in rows:
            cid = ids[row["contact_no"]]
            org = cid if row["type"] == "company" else ids.get(row.get("company_no") or "")
            conn.execute(update(contacts).where(contacts.c.id == cid).values(org_id=org))
            for code in row.get("mailing_groups", ()):
                codes.append({"kind": "mailing_groups", "code": code, "contact_id": cid})
        if codes:
            conn.execute(insert(ContactCode.__table__), codes)
        bump_data_version(conn)
    return ids


def company(no: str, **kw: Any) -> dict[str, Any]:
    return {"contact_no": no, "type": "company", "name": f"Company {no}", **kw}


def person(no: str, company_no: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"contact_no": no, "type": "person", "name": f"Person {no}", "company_no": company_no, **kw}
