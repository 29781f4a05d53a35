"""The audit report: report.html (self-contained), posts.csv and report.json from one set of figures.

Figures are SQL aggregates (see bot/store/audit.py); the suggestion rows are streamed into the CSV
and the JSON, and only the newest `HTML_ROW_CAP` of each kind go into the HTML table (the page
says so), so 100,000 decisions build in seconds with flat memory.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from bot.domain import utcnow
from bot.report import html, live, plots
from bot.store import audit
from bot.store.db import Store
from bot.urls import safe_link

log = logging.getLogger(__name__)

HTML_ROW_CAP = 500
SOURCES = ("posted", "would-post")
CSV_FIELDS = (
    "source", "decision_id", "observation_id", "observation_url", "observation_uri", "photo_url", "kind", "taxon_id",
    "model_taxon_id", "taxon_name", "rank", "score", "n_photos", "model_name", "model_version", "mode", "status",
    "approver", "posted_as", "post_kind", "remote_id", "time", "outcome", "post_state",
    "community_taxon_id", "checked_at", "final_taxon_name", "edited", "body",
)


def _group_label(key: str, value: Any) -> str:
    if key == "prob_bin":
        lo = int(value) / audit.N_PROB_BINS
        return f"{lo:.1f}–{lo + 1 / audit.N_PROB_BINS:.1f}"
    if key == "n_photos":
        return f"{audit.MAX_PHOTO_BUCKET}+" if int(value) >= audit.MAX_PHOTO_BUCKET else str(value)
    return str(value)


def precision_rows(rows: Iterable[tuple[str, Any, str, int, float]], key: str) -> list[dict[str, Any]]:
    """Folds (source, group, outcome, n, score sum) into one row per source and group."""
    groups: dict[tuple[str, Any], dict[str, Any]] = {}
    for source, group, outcome, n, score_sum in rows:
        d = groups.setdefault((source, group), {"source": source, "group": _group_label(key, group),
                                                "sort": group, "n": 0, "score_sum": 0.0,
                                                **{o: 0 for o in audit.OUTCOMES}})
        d[outcome] = d.get(outcome, 0) + n
        d["n"] += n
        d["score_sum"] += score_sum
    out = []
    for (_, _), d in sorted(groups.items(), key=lambda kv: (SOURCES.index(kv[0][0])
                                                              if kv[0][0] in SOURCES else 9, kv[0][1])):
        good = d["confirmed"] + d["refined"]
        decided = good + d["contradicted"]
        d["decided"] = decided
        d["precision"] = good / decided if decided else None
        d["mean_score"] = d.pop("score_sum") / d["n"] if d["n"] else None
        d.pop("sort")
        out.append(d)
    return out


def overall(rank_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Outcome totals and precision per source, summed over ranks."""
    out: dict[str, dict[str, Any]] = {}
    for r in rank_rows:
        d = out.setdefault(r["source"], {"n": 0, "decided": 0, **{o: 0 for o in audit.OUTCOMES}})
        for k in ("n", "decided", *audit.OUTCOMES):
            d[k] += r[k]
    for d in out.values():
        d["precision"] = (d["confirmed"] + d["refined"]) / d["decided"] if d["decided"] else None
    return out


def collect(store: Store, f: audit.Filters, target_precision: float = 0.9,
            min_outcomes: int = 50) -> dict[str, Any]:
    """Every figure of the report, as plain JSON-able data."""
    with store.session() as s:
        n = audit.count_decisions(s, f)
        figures: dict[str, Any] = {"n_decisions": n, "empty": n == 0}
        if n == 0:
            return figures
        figures["totals"] = audit.totals(s, f)
        figures["queue"] = audit.queue_fate(s, f)
        figures["moderators"] = audit.moderator_actions(s, f)
        figures["ledger"] = audit.ledger_status(s, f)
        figures["precision"] = {k: precision_rows(audit.outcome_counts(s, f, k), k)
                                for k in audit.PRECISION_KEYS}
        figures["outcomes"] = overall(figures["precision"]["rank"])
        figures["outcomes_over_time"] = audit.outcomes_over_time(s, f)
        figures["abstention"] = audit.abstention(s, f)
        figures["live_calibration"] = live.live_calibration(audit.live_outcomes(s, f), target_precision,
                                                            min_outcomes)
    return figures


def live_entries(store: Store, target_precision: float, min_outcomes: int,
                 f: audit.Filters | None = None) -> list[dict[str, Any]]:
    """The report's live calibration alone (for `plantbot cutoffs suggest|apply`)."""
    with store.session() as s:
        return live.live_calibration(audit.live_outcomes(s, f or audit.Filters()), target_precision, min_outcomes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return value


TIME_FIELDS = ("time", "checked_at")


@dataclass(frozen=True)
class LinkRules:
    """Which URLs the report may emit as links: the platform's own hosts for observations, the allowed
    photo hosts for photos (bot.urls). A URL from the platform that fails is kept as text only."""

    site_url: str | None = None
    platform_hosts: tuple[str, ...] = ()
    photo_hosts: tuple[str, ...] = ()

    @classmethod
    def for_site(cls, site_url: str | None, platform_hosts: Sequence[str] | None = None,
                 photo_hosts: Sequence[str] | None = None) -> LinkRules:
        own = tuple(platform_hosts) if platform_hosts is not None else tuple(
            h for h in [site_host_entry(site_url)] if h)
        photos = tuple(photo_hosts) if photo_hosts is not None else own
        site = site_url if site_url and safe_link(site_url, own or [site_host_entry(site_url)]) else None
        return cls(site, own, photos)


def site_host_entry(url: str | None) -> str:
    """The allowed-host entry (`host` or `host:port`) of a configured URL."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    return f"{parts.hostname}:{port}" if parts.hostname and port else parts.hostname or ""


def _row(raw: dict[str, Any], links: LinkRules) -> dict[str, Any]:
    """One CSV/JSON row (cheap: this runs once per suggestion).

    `observation_url` and `photo_url` hold only URLs that passed the link rules (a consumer may make them
    links); the platform's raw `uri` is kept in `observation_uri`, as text.
    """
    row = {k: raw.get(k) for k in CSV_FIELDS}
    for k in TIME_FIELDS:
        value = row[k]
        if isinstance(value, datetime):
            row[k] = value.isoformat(sep=" ")
    uri = raw.get("uri")
    row["observation_uri"] = uri
    row["observation_url"] = safe_link(uri, links.platform_hosts) or (
        f"{links.site_url.rstrip('/')}/observations/{raw['observation_id']}" if links.site_url else None)
    row["photo_url"] = safe_link(raw.get("photo_url"), links.photo_hosts)
    return row


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: a leading =, +, -, @, tab or CR becomes text ('=...)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_rows(store: Store, f: audit.Filters, links: LinkRules, csv_out: TextIO,
                json_out: TextIO) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Streams every suggestion into the CSV and JSON; keeps the newest few per source for HTML."""
    writer = csv.writer(csv_out)
    kept: dict[str, list[dict[str, Any]]] = {src: [] for src in SOURCES}
    counts = dict.fromkeys(SOURCES, 0)
    sep = "\n"
    with store.session() as s:
        for src in SOURCES:
            for raw in audit.iter_suggestions(s, f, src):
                row = _row(raw, links)
                writer.writerow([csv_cell(v) for v in row.values()])
                json_out.write(sep + json.dumps(row))
                sep = ",\n"
                counts[src] += 1
                if len(kept[src]) < HTML_ROW_CAP:
                    kept[src].append(row)
    return kept, counts


def build_report(store: Store, out_dir: str | Path, *, since: datetime | None = None,
                 model_version: str | None = None, site_url: str | None = None,
                 platform_hosts: Sequence[str] | None = None,
                 photo_hosts: Sequence[str] | None = None, target_precision: float = 0.9,
                 min_outcomes: int = 50) -> dict[str, Any]:
    """Writes report.html, posts.csv and report.json into `out_dir`; returns the figures.

    Links go only to `platform_hosts` (observations) and `photo_hosts` (photos); both default to the
    host of `site_url`, and without one nothing from the platform becomes a link.  `target_precision`
    and `min_outcomes` are the live cutoff suggestion's (from [decision]).
    """
    links = LinkRules.for_site(site_url, platform_hosts, photo_hosts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f = audit.Filters(since=since, model_version=model_version)
    figures = collect(store, f, target_precision, min_outcomes)
    figures["generated_at"] = _jsonable(utcnow().replace(microsecond=0))
    figures["filters"] = {"since": _jsonable(since), "model_version": model_version}
    figures["html_row_cap"] = HTML_ROW_CAP
    with (out / "posts.csv").open("w", newline="", encoding="utf-8") as csv_out, \
            (out / "report.json").open("w", encoding="utf-8") as json_out:
        csv.writer(csv_out).writerow(CSV_FIELDS)
        json_out.write('{"rows": [')  # rows first (streamed), then the figures, which count them
        kept, figures["suggestions"] = ({}, dict.fromkeys(SOURCES, 0)) if figures["empty"] else \
            _write_rows(store, f, links, csv_out, json_out)
        json_out.write("\n],\n" + json.dumps(figures, indent=1)[1:] + "\n")
    svgs = {} if figures["empty"] else plots.render_all(figures)
    (out / "report.html").write_text(html.render(figures, kept, svgs), encoding="utf-8")
    figures["files"] = {name: str(out / name) for name in ("report.html", "posts.csv", "report.json")}
    log.info("report written to %s (%d decisions)", out, figures["n_decisions"])
    return figures
