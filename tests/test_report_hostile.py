"""A hostile observation `uri` never becomes a link: not in report.html (which also carries a strict CSP), not in
posts.csv / report.json, where the raw value is kept as text beside the checked link."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.report.build import build_report
from bot.store.db import Store
from bot.store.models import ObservationRow
from tests.audit_helpers import seed
from tests.conftest import copy_migrated

HOSTILE = {
    101: "javascript:alert(document.domain)",
    102: "JavaScript:alert(1)//http://127.0.0.1/observations/102",
    103: "data:text/html,<script>alert(1)</script>",
    104: "https://evil.example/observations/104",
    105: "=HYPERLINK(\"https://evil.example\",\"open\")",
    106: "http://127.0.0.1.evil.example/observations/106",
}


@pytest.fixture
def store(tmp_path: Path, migrated_template: Path) -> Iterator[Store]:
    s = Store(copy_migrated(migrated_template, tmp_path / "report.sqlite3"), migrate=False)
    seed(s)
    with s.session() as db:
        for row in db.scalars(select(ObservationRow).where(ObservationRow.id.in_(HOSTILE))):
            row.uri = HOSTILE[row.id]
    yield s
    s.close()


def test_a_hostile_uri_is_never_a_link(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "report"
    build_report(store, out, site_url="http://127.0.0.1", platform_hosts=["127.0.0.1"])
    page = (out / "report.html").read_text(encoding="utf-8")
    head = html.unescape(page[:page.index("</head>")])
    assert '<meta http-equiv="Content-Security-Policy"' in head and "script-src 'none'" in head
    assert "default-src 'none'" in head
    lowered = page.lower()
    assert "javascript:" not in lowered and "data:text/html" not in lowered and "evil.example" not in lowered
    assert 'href="http://127.0.0.1/observations/101"' in page  # replaced by the site's own link
    assert 'href="http://127.0.0.1/observations/107"' in page  # a good uri is still a link
    with (out / "posts.csv").open(encoding="utf-8") as fh:
        rows = {int(r["observation_id"]): r for r in csv.DictReader(fh)}
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    by_json = {r["observation_id"]: r for r in doc["rows"]}
    for oid, uri in HOSTILE.items():
        assert rows[oid]["observation_url"] == f"http://127.0.0.1/observations/{oid}"
        assert by_json[oid]["observation_url"] == f"http://127.0.0.1/observations/{oid}"
        assert by_json[oid]["observation_uri"] == uri  # the raw value, stored as text
        assert rows[oid]["observation_uri"] in (uri, "'" + uri)
    assert rows[105]["observation_uri"].startswith("'=")  # a spreadsheet shows it, never runs it
