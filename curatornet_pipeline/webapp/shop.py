"""An artwork as a customer reads it: title, artist, price, medium, size, and the link to buy or enquire.

The catalogue rows come from the snapshot (``serving.catalogue``, whose optional shop columns are described
in ``core/catalogue.py``). Pages and JSON both build their entries here, so a price or a title reads the same
everywhere. No model id and no score reaches a customer through these entries.
"""

from __future__ import annotations

import math
from urllib.parse import quote

import pandas as pd

from curatornet_pipeline.core.catalogue import display_title

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def price_text(price: object, currency: object) -> str | None:
    """"$1,250" / "1,250 CHF", or None when the artwork has no price (price on request)."""
    if price is None or (isinstance(price, float) and math.isnan(price)) or pd.isna(price):
        return None
    amount = f"{float(price):,.0f}" if float(price).is_integer() else f"{float(price):,.2f}"
    code = _text(currency)
    if code in _SYMBOLS:
        return f"{_SYMBOLS[code]}{amount}"
    return f"{amount} {code}" if code else amount


def shop_link(row: pd.Series, template: str | None) -> dict | None:
    """{"url", "label"} of the Buy/Enquire link: the artwork's own shop_url, else the gallery's template."""
    url = _text(row.get("shop_url"))
    if url is None and template:
        url = template.replace("{artwork_id}", quote(str(row["artwork_id"]), safe=""))
    if url is None:
        return None
    buyable = bool(row["available"]) and price_text(row.get("price"), row.get("currency")) is not None
    return {"url": url, "label": "Buy" if buyable else "Enquire"}


def entry(row: pd.Series, template: str | None = None) -> dict:
    """The customer-facing fields of one catalogue row (JSON-ready: plain str, int, bool or None)."""
    year = row.get("year")
    return {
        "artwork_id": str(row["artwork_id"]),
        "title": display_title(row.get("title"), str(row["artwork_id"])),
        "artist": _text(row.get("artist_name")),
        "year": None if year is None or pd.isna(year) else int(year),
        "medium": _text(row.get("medium")),
        "size": _text(row.get("size")),
        "price": price_text(row.get("price"), row.get("currency")),
        "available": bool(row["available"]),
        "kind": str(row["kind"]),
        "link": shop_link(row, template),
    }
