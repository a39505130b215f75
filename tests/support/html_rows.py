"""Reading the rows of an HTML table of an admin page, as the support desk sees them."""

from __future__ import annotations

from html.parser import HTMLParser


class _Rows(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # > 0 inside the table
        self.rows: list[dict] = []
        self.cell: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or attrs.get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append({"class": attrs.get("class", ""), "cells": {}, "links": []})
        elif self.depth and tag in ("td", "th") and self.rows:
            self.cell = attrs.get("class") or f"col{len(self.rows[-1]['cells'])}"
            self.rows[-1]["cells"][self.cell] = ""
        elif self.depth and tag == "a" and self.rows:
            self.rows[-1]["links"].append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.depth and self.cell is not None and self.rows:
            self.rows[-1]["cells"][self.cell] += data


def table_rows(html: str, table_id: str) -> list[dict]:
    """The body rows of ``<table id=table_id>``: each ``{"class", "cells", "links", "text"}``,
    ``cells`` by the cell's class (``col<n>`` when it has none), ``text`` all cells joined."""
    parser = _Rows(table_id)
    parser.feed(html)
    rows = parser.rows
    for row in rows:
        row["cells"] = {k: " ".join(v.split()) for k, v in row["cells"].items()}
        row["text"] = " | ".join(row["cells"].values())
    # The header row holds <th> cells only, without classes.
    return [r for r in rows if not all(k.startswith("col") for k in r["cells"])]
