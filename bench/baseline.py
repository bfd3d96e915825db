"""The baselines the preview is measured against, on the same data: pandas masks and DuckDB over Arrow."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segcore._stats import SPEND_BANDS
from segcore.fields import AGE_BANDS

CODE_COLUMNS = ("type", "country", "language", "gender", "acquisition_source", "churn_risk", "territory", "salesperson")
DATE_COLUMNS = ("birth_date", "acquisition_date", "last_purchase_date")
CHART_COLUMNS = ("country", "gender", "age_band", "acquisition_source", "churn_risk", "spend_band")


@dataclass
class PandasData:
    """Contacts as one DataFrame (codes as categoricals, lists one-hot), plus interactions and profile rows."""

    df: pd.DataFrame
    it: pd.DataFrame
    pf: pd.DataFrame
    today: dt.date
    industry_cols: list[str]
    excluded: np.ndarray

    def days_ago(self, n: int) -> pd.Timestamp:
        return pd.Timestamp(self.today - dt.timedelta(days=n))

    def years_ago(self, n: int) -> pd.Timestamp:
        return pd.Timestamp(self.today.replace(year=self.today.year - n))


def load_pandas(contacts_csv: Path, interactions_csv: Path, today: dt.date, order: list[str]) -> PandasData:
    """`order` is the contact numbers by database id, so row i here is row i of our snapshot."""
    df = pd.read_csv(contacts_csv, dtype=str, keep_default_na=False)
    df = df.set_index("contact_no", drop=False).loc[order].reset_index(drop=True)
    for col in CODE_COLUMNS:
        df[col] = df[col].replace("", None).astype("category")
    for col in DATE_COLUMNS:
        df[col] = pd.to_datetime(df[col].replace("", None), format="%Y-%m-%d")
    for col in ("total_spent", "purchase_count", "rating"):
        df[col] = pd.to_numeric(df[col].replace("", None))
    for col in ("email", "name", "city", "post_code"):
        df[col] = df[col].replace("", None)
    birth = df["birth_date"]
    t = pd.Timestamp(today)
    before_birthday = (birth.dt.month > t.month) | ((birth.dt.month == t.month) & (birth.dt.day > t.day))
    df["age"] = t.year - birth.dt.year - before_birthday.astype(float)
    edges = [-1] + [hi for _, _, hi in AGE_BANDS if hi is not None] + [10_000]
    df["age_band"] = pd.cut(df["age"], bins=edges, labels=[b[0] for b in AGE_BANDS])
    spend_edges = [b[1] for b in SPEND_BANDS] + [float("inf")]
    df["spend_band"] = pd.cut(df["total_spent"], bins=spend_edges, labels=[b[0] for b in SPEND_BANDS], right=False)
    industry_cols: list[str] = []
    for col, prefix in (("mailing_groups", "mg"), ("industry_groups", "ind"), ("job_responsibilities", "job")):
        dummies = df[col].str.get_dummies(sep=";").astype(bool)
        for code in dummies.columns:
            df[f"{prefix}_{code}"] = dummies[code]
            if prefix == "ind":
                industry_cols.append(f"ind_{code}")
    position = pd.Series(np.arange(len(df)), index=df["contact_no"])
    it = pd.read_csv(interactions_csv, dtype=str, keep_default_na=False)
    it["pos"] = position.loc[it["contact_no"]].to_numpy()
    it["date"] = pd.to_datetime(it["date"], format="%Y-%m-%d")
    it["template"] = it["template"].astype("category")
    it["evaluation"] = it["evaluation"].astype("category")
    pairs = df[["contact_no", "profile"]].assign(profile=df["profile"].str.split(";")).explode("profile")
    pairs = pairs[pairs["profile"].fillna("") != ""]
    split = pairs["profile"].str.split("=", n=1, expand=True)
    pf = pd.DataFrame(
        {
            "pos": position.loc[pairs["contact_no"]].to_numpy(),
            "questionnaire": split[0].to_numpy(),
            "answer": split[1].to_numpy(),
        }
    )
    excluded = df["exclude_from_segments"].str.lower().isin(["true", "1", "yes"]).to_numpy()
    return PandasData(df=df, it=it, pf=pf, today=today, industry_cols=industry_cols, excluded=excluded)


def pandas_preview(data: PandasData, mask: np.ndarray, members: np.ndarray, kind: str) -> dict[str, Any]:
    """What a pandas implementation of the preview computes: counts, and the after-set charts."""
    if kind == "add":
        mask = mask & ~data.excluded  # Add leaves out contacts flagged exclude_from_segments
        entering = mask & ~members
        after = members | mask
        counts = {"added": int(entering.sum()), "removed": 0}
    elif kind == "refine":
        after = members & mask
        counts = {"added": 0, "removed": int((members & ~mask).sum())}
    else:
        after = members & ~mask
        counts = {"added": 0, "removed": int((members & mask).sum())}
    sub = data.df.loc[after]
    charts = {col: sub[col].value_counts() for col in CHART_COLUMNS}
    charts["industry"] = sub[data.industry_cols].sum()
    counts["size_after"] = int(after.sum())
    counts["charts"] = len(charts)
    return counts


def duckdb_connection(sqlite_path: Path) -> Any | None:
    """DuckDB holding the same tables as the SQLite file (loaded once through pandas), or None if not installed."""
    try:
        import duckdb
    except ImportError:
        return None
    import sqlite3

    src = sqlite3.connect(sqlite_path)
    con = duckdb.connect()
    for table in ("contacts", "contact_codes", "profile_answers", "interactions", "segment_members"):
        query = f"SELECT * FROM {table}"  # noqa: S608 - our own table names
        frame = pd.read_sql_query(query, src)
        if table == "contacts":
            for col in DATE_COLUMNS:
                frame[col] = pd.to_datetime(frame[col]).dt.date
            frame = frame.drop(columns=["attributes"])
        if table == "interactions":
            frame["date"] = pd.to_datetime(frame["date"]).dt.date
        con.register(f"_{table}", frame)
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM _{table}")  # noqa: S608 - our own table names
        con.unregister(f"_{table}")
    src.close()
    return con
