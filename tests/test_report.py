"""The audit report's figures, files and page, against the hand-computed scenario."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.config import Config
from bot.report import build
from bot.report.build import build_report
from bot.report.outcomes import refresh_outcomes
from bot.store.db import Store
from tests.audit_helpers import CASES, T0, FakePlatform, seed, taxon_name


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One seeded, checked database shared by the tests that only read it."""
    s = Store(tmp_path_factory.mktemp("checked") / "report.sqlite3")
    seed(s)
    refresh_outcomes(s, FakePlatform(CASES), Config(), now=T0 + timedelta(days=1))  # type: ignore[arg-type]
    yield s
    s.close()


@pytest.fixture(scope="module")
def built(checked: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("report")
    return build_report(checked, out), out


def by_group(rows: list[dict], source: str = "posted") -> dict[str, dict]:
    return {r["group"]: r for r in rows if r["source"] == source}


def test_precision_figures_match_hand_computed(built: tuple[dict, Path]) -> None:
    fig = built[0]
    posted, dry = fig["outcomes"]["posted"], fig["outcomes"]["would-post"]
    assert (posted["confirmed"], posted["refined"], posted["contradicted"]) == (1, 2, 2)
    assert (posted["pending"], posted["gone"], posted["decided"]) == (2, 3, 5)
    assert posted["precision"] == pytest.approx(0.6)
    assert dry["precision"] == pytest.approx(0.5) and dry["decided"] == 2
    rank = by_group(fig["precision"]["rank"])
    assert rank["species"]["precision"] == pytest.approx(2 / 3)
    assert rank["genus"]["precision"] == 1.0 and rank["family"]["precision"] == 0.0
    assert by_group(fig["precision"]["model_version"])["v1"]["precision"] == pytest.approx(0.6)
    bins = by_group(fig["precision"]["prob_bin"])
    assert (bins["0.4–0.5"]["decided"], bins["0.4–0.5"]["precision"], bins["0.4–0.5"]["gone"]) == (2, 0.0, 1)
    assert bins["0.5–0.6"]["precision"] == 1.0 and bins["0.5–0.6"]["pending"] == 1
    assert bins["0.9–1.0"]["mean_score"] == pytest.approx(0.95)
    photos = by_group(fig["precision"]["n_photos"])
    assert photos["1"]["precision"] == 0.0 and photos["2"]["precision"] == 1.0
    assert photos["5+"]["n"] == 2 and photos["5+"]["decided"] == 1


def test_queue_totals_and_moderators(built: tuple[dict, Path]) -> None:
    fig = built[0]
    assert fig["queue"] == {"approved": 9, "edited": 1, "rejected": 1, "pending": 1}
    mods = {(r["moderator"], r["action"]): r["n"] for r in fig["moderators"]}
    assert mods == {("alice", "approve"): 6, ("bob", "approve"): 3, ("bob", "edit"): 1, ("bob", "reject"): 1}
    totals = {(r["mode"], r["kind"]): r["n"] for r in fig["totals"]}
    assert totals == {("review", "species"): 9, ("review", "genus"): 2, ("review", "family"): 1,
                      ("dry-run", "species"): 1, ("dry-run", "genus"): 1, ("dry-run", "abstain"): 1}
    assert fig["suggestions"] == {"posted": 10, "would-post": 2}


def test_abstention_share_per_cutoff(built: tuple[dict, Path]) -> None:
    ab = built[0]["abstention"]
    assert ab["n_classified"] == 15 and len(ab["cutoffs"]) == 19
    i = ab["cutoffs"].index(0.3)
    assert ab["no_species_share"][i] == pytest.approx(5 / 15)  # d8 d9 d10 d12 d13
    assert ab["abstain_share"][i] == pytest.approx(1 / 15)  # only d13 has nothing >= 0.3
    assert ab["abstain_share"][-1] == pytest.approx(14 / 15)  # only d1 (0.95) clears 0.95
    assert all(a <= b for a, b in zip(ab["abstain_share"], ab["abstain_share"][1:], strict=False))


def test_csv_and_json_hold_every_row(checked: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fig = build_report(checked, out, site_url="http://127.0.0.1")
    with (out / "posts.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    by_obs = {int(r["observation_id"]): r for r in rows}
    assert by_obs[103]["approver"] == "bob" and by_obs[103]["outcome"] == "contradicted"
    assert (by_obs[103]["taxon_id"], by_obs[103]["model_taxon_id"]) == ("31", "30")
    assert (by_obs[103]["final_taxon_name"], by_obs[103]["edited"]) == (taxon_name(31), "taxon")
    assert (by_obs[101]["final_taxon_name"], by_obs[101]["edited"]) == ("Rosa canina", "")
    assert by_obs[103]["body"] == "Posted words for observation 103."  # the words actually posted
    assert by_obs[111]["body"] == ""  # nothing was posted
    assert by_obs[111]["source"] == "would-post" and by_obs[111]["outcome"] == "confirmed"
    assert by_obs[106]["post_state"] == "deleted"
    assert by_obs[101]["observation_url"] == "http://127.0.0.1/observations/101"
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(doc["rows"]) == 12 and doc["outcomes"] == fig["outcomes"]
    assert doc["precision"]["rank"] == fig["precision"]["rank"]


def test_html_is_self_contained_and_complete(built: tuple[dict, Path]) -> None:
    out = built[1]
    page = (out / "report.html").read_text(encoding="utf-8")
    for needle in ('id="totals-table"', 'id="queue-table"', 'id="moderators-table"', 'id="precision-rank"',
                   'id="precision-prob_bin"', 'id="precision-n_photos"', 'id="abstention-table"',
                   'id="table-posted"', 'id="table-would-post"', 'id="plot-calibration"', 'id="plot-abstention"'):
        assert needle in page, needle
    assert page.count("<svg") >= 3
    assert "<img" not in page and "<link" not in page and "<script" not in page and "@import" not in page
    assert not re.search(r"""\bsrc\s*=|url\(\s*['"]?https?:""", page)
    # the only absolute URLs are plain links (observations, photos)
    for m in re.finditer(r"""(?:xlink:)?href="(https?://[^"]+)""", page):
        assert page[max(0, m.start() - 3):m.start()].endswith("<a "), m.group(0)
    assert "60.0%" in page and "would have posted" in page
    assert page.count("edited by the\nmoderator; the model proposed Rosa canina") == 1
    assert f"{taxon_name(31)} (31)" in page and "Posted words for observation 103." in page


def test_html_table_is_capped_but_files_are_not(checked: Store, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "HTML_ROW_CAP", 3)
    out = tmp_path / "out"
    build_report(checked, out)
    page = (out / "report.html").read_text(encoding="utf-8")
    table = page.split('id="table-posted"')[1].split("</table>")[0]
    assert table.count("<tr>") == 4  # header + 3
    assert "Showing the newest 3 of 10" in page
    assert len((out / "posts.csv").read_text(encoding="utf-8").strip().splitlines()) == 13


def test_filters_narrow_the_decisions(checked: Store, tmp_path: Path) -> None:
    fig = build_report(checked, tmp_path / "a", since=T0 + timedelta(minutes=10))
    assert fig["n_decisions"] == 5 and fig["suggestions"] == {"posted": 0, "would-post": 2}
    fig = build_report(checked, tmp_path / "b", model_version="v2")
    assert fig["empty"]
    assert "for these filters" in (tmp_path / "b" / "report.html").read_text(encoding="utf-8")


def test_empty_database_says_there_is_nothing_yet(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fig = build_report(store, out)
    assert fig["empty"] and fig["n_decisions"] == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="empty"' in page and "Nothing yet" in page and "<table" not in page
    assert (out / "posts.csv").read_text(encoding="utf-8").splitlines() == [",".join(build.CSV_FIELDS)]
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["empty"] is True and doc["rows"] == []


def test_cli_report_writes_the_three_files(checked: Store, tmp_path: Path) -> None:
    from bot.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[store]\ndatabase = "{checked.database}"\n', encoding="utf-8")
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(main, ["--config", str(cfg), "report", "--out", str(out), "--since",
                                       "2026-03-01", "--model-version", "v1"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "posts.csv", "report.json"}
    bad = CliRunner().invoke(main, ["--config", str(cfg), "report", "--out", str(out), "--since", "March"])
    assert bad.exit_code == 2 and "--since" in bad.output
