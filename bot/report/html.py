"""report.html: one self-contained page (inline CSS, inline SVG plots, no external resources).

Photos are never embedded or loaded: a thumbnail would be a request to the photo host, so each row
links to its photo instead, and the page opens offline.  Jinja2 escapes every value.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

from bot.store.audit import OUTCOMES

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 2rem;color:#1a202c}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:.25rem .5rem;text-align:left}th{background:#f7fafc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #e2e8f0;border-radius:6px;
padding:.6rem 1rem;min-width:10rem}.card b{display:block;font-size:1.4rem}
blockquote.body{white-space:pre-wrap;margin:.2rem 0;padding:.2rem .5rem;border-left:3px solid #cbd5e0;font-size:12px}
.muted{color:#718096}.note{background:#fffbea;border-left:4px solid #ecc94b;padding:.4rem .8rem}
.plots{display:flex;gap:1rem;flex-wrap:wrap}.plot svg{max-width:100%;height:auto}
.o-confirmed{color:#2f855a}.o-refined{color:#38a169}.o-contradicted{color:#c53030}
.o-pending{color:#718096}.o-gone{color:#4a5568;font-style:italic}
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PlantBot audit report</title><style>{{ css }}</style></head>
<body>
<h1>PlantBot audit report</h1>
<p class="muted">Generated {{ f.generated_at }} UTC{% if f.filters.since %} · decisions since
{{ f.filters.since }}{% endif %}{% if f.filters.model_version %} · model version
{{ f.filters.model_version }}{% endif %}</p>
{% if f.empty %}
<p id="empty" class="note">Nothing yet: no decisions have been recorded{% if f.filters.since or
f.filters.model_version %} for these filters{% endif %}. Run PlantBot (for example
<code>plantbot once --dry-run</code>) and build the report again.</p>
{% else %}
<div class="cards">
<div class="card">decisions<b>{{ f.n_decisions }}</b></div>
<div class="card">posted<b>{{ f.suggestions.posted }}</b></div>
<div class="card">would have posted (dry-run)<b>{{ f.suggestions["would-post"] }}</b></div>
{% for src, o in f.outcomes.items() %}
<div class="card">precision, {{ label(src) }}<b>{{ pct(o.precision) }}</b>
<span class="muted">{{ o.decided }} decided</span></div>
{% endfor %}
</div>
<p class="muted">Precision = (confirmed + refined) / (confirmed + refined + contradicted), from the latest
check of each suggestion. Pending (no community taxon yet, or the community is still above the proposed
rank) and gone (observation deleted, post withdrawn or hidden) are not decided.</p>

<h2 id="totals">Decisions by kind, mode and model version</h2>
<table id="totals-table"><tr><th>model version</th><th>mode</th><th>kind</th><th>decisions</th></tr>
{% for r in f.totals %}<tr><td>{{ r.model_version }}</td><td>{{ r.mode }}</td><td>{{ r.kind }}</td>
<td class="num">{{ r.n }}</td></tr>{% endfor %}</table>

<h2 id="queue">The review queue's fate</h2>
{% if f.queue %}<table id="queue-table"><tr>{% for k in fates %}<th>{{ k }}</th>{% endfor %}</tr><tr>
{% for k in fates %}<td class="num">{{ f.queue.get(k, 0) }}</td>{% endfor %}</tr></table>
{% else %}<p class="muted">No proposals went through review.</p>{% endif %}
{% if f.moderators %}<table id="moderators-table"><tr><th>moderator</th>
{% for a in actions %}<th>{{ a }}</th>{% endfor %}</tr>
{% for m, acts in by_moderator.items() %}<tr><td>{{ m }}</td>
{% for a in actions %}<td class="num">{{ acts.get(a, 0) }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if f.ledger %}<table id="ledger-table"><tr><th>ledger action</th><th>kind</th><th>status</th><th>rows</th></tr>
{% for r in f.ledger %}<tr><td>{{ r.action }}</td><td>{{ r.kind }}</td><td>{{ r.status }}</td>
<td class="num">{{ r.n }}</td></tr>{% endfor %}</table>{% endif %}

<h2 id="precision">Precision</h2>
<div class="plots">{{ svgs.get("calibration", "")|safe }}{{ svgs.get("outcomes", "")|safe }}</div>
{% for key, title in precision_titles %}
<h3>By {{ title }}</h3>
{% if f.precision[key] %}<table class="precision" id="precision-{{ key }}"><tr><th>{{ title }}</th>
<th>source</th>{% for o in outcomes %}<th>{{ o }}</th>{% endfor %}<th>decided</th><th>precision</th>
<th>mean probability</th></tr>
{% for r in f.precision[key] %}<tr><td>{{ r.group }}</td><td>{{ label(r.source) }}</td>
{% for o in outcomes %}<td class="num">{{ r[o] }}</td>{% endfor %}<td class="num">{{ r.decided }}</td>
<td class="num">{{ pct(r.precision) }}</td><td class="num">{{ "%.3f"|format(r.mean_score) }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">No checked outcomes yet (run <code>plantbot audit
refresh</code>).</p>{% endif %}
{% endfor %}

<h2 id="live">Live calibration and suggested cutoffs</h2>
{% if f.live_calibration %}<p>Per model version and rank: the community's decided outcomes (confirmed or
refined = right, contradicted = wrong) by probability bin with 95% Wilson intervals, and the lowest cutoff
at which at least {{ f.live_calibration[0].min_outcomes }} decided proposals remain with precision
{{ pct(f.live_calibration[0].target_precision) }} or better. Nothing changes by itself:
<code>plantbot cutoffs suggest</code> prints this, <code>plantbot cutoffs apply</code> writes it after
showing the change. Dotted lines: each version's suggested cutoff.</p>
<div class="plots">{{ svgs.get("live", "")|safe }}</div>
<table id="live-table"><tr><th>model version</th><th>rank</th><th>checked</th><th>pending</th><th>decided</th>
<th>precision (95% CI)</th><th>cutoff used</th><th>suggested cutoff</th></tr>
{% for e in f.live_calibration %}<tr><td>{{ e.model_version }}</td><td>{{ e.rank }}</td>
<td class="num">{{ e.outcomes }}</td><td class="num">{{ e.pending }}</td><td class="num">{{ e.decided }}</td>
<td class="num">{{ pct(e.precision) }}{% if e.interval %}
({{ pct(e.interval[0]) }}–{{ pct(e.interval[1]) }}){% endif %}</td>
<td class="num">{{ e.cutoffs_used|map("round", 3)|join(", ") }}</td>
<td>{% if e.suggested_cutoff is not none %}{{ "%.3f"|format(e.suggested_cutoff) }} ({{ pct(e.suggested_precision) }}
of {{ e.suggested_decided }}){% else %}<span class="muted">{{ e.reason }}</span>{% endif %}</td></tr>
{% endfor %}</table>
<table id="live-bins"><tr><th>model version</th><th>rank</th><th>probability bin</th><th>decided</th>
<th>precision</th><th>95% interval</th></tr>
{% for e in f.live_calibration %}{% for b in e.bins %}<tr><td>{{ e.model_version }}</td><td>{{ e.rank }}</td>
<td>{{ "%.1f–%.1f"|format(b.low, b.high) }}</td><td class="num">{{ b.decided }}</td>
<td class="num">{{ pct(b.precision) }}</td><td class="num">{{ pct(b.interval[0]) }}–{{ pct(b.interval[1]) }}</td>
</tr>{% endfor %}{% endfor %}</table>
{% else %}<p class="muted">No checked outcomes yet (run <code>plantbot audit refresh</code>).</p>{% endif %}

<h2 id="abstention">Abstention by cutoff</h2>
<div class="plots">{{ svgs.get("abstention", "")|safe }}</div>
<table id="abstention-table"><tr><th>cutoff</th>{% for c in f.abstention.cutoffs %}<th>{{ c }}</th>
{% endfor %}</tr><tr><td>no species ID</td>{% for v in f.abstention.no_species_share %}
<td class="num">{{ pct(v) }}</td>{% endfor %}</tr><tr><td>abstain</td>
{% for v in f.abstention.abstain_share %}<td class="num">{{ pct(v) }}</td>{% endfor %}</tr></table>
<p class="muted">From the recorded probabilities of {{ f.abstention.n_classified }} classified decisions
(skipped observations excluded).</p>

{% if f.outcomes_over_time %}<h2 id="trend">Outcomes by check day</h2>
<table id="trend-table"><tr><th>day</th><th>source</th><th>outcome</th><th>checks</th></tr>
{% for r in f.outcomes_over_time %}<tr><td>{{ r.day }}</td><td>{{ label(r.source) }}</td>
<td class="o-{{ r.outcome }}">{{ r.outcome }}</td><td class="num">{{ r.n }}</td></tr>{% endfor %}
</table>{% endif %}

{% for src, title in (("posted", "Posted suggestions"), ("would-post", "Would have posted (dry-run)")) %}
<h2 id="rows-{{ src }}">{{ title }}</h2>
{% set n = f.suggestions[src] %}
{% if n > rows[src]|length %}<p class="note">Showing the newest {{ rows[src]|length }} of {{ n }};
posts.csv and report.json hold all of them.</p>{% endif %}
{% if rows[src] %}<table class="suggestions" id="table-{{ src }}"><tr><th>observation</th><th>photo</th>
<th>final taxon and posted words</th><th>kind</th><th>probability</th><th>photos</th><th>model</th>
<th>{{ "approver" if src == "posted" else "mode" }}</th><th>time</th><th>outcome</th><th>post</th></tr>
{% for r in rows[src] %}<tr>
<td>{% if r.observation_url %}<a href="{{ r.observation_url }}">{{ r.observation_id }}</a>{% else %}
{{ r.observation_id }}{% endif %}</td>
<td>{% if r.photo_url %}<a href="{{ r.photo_url }}">photo</a>{% endif %}</td>
<td>{% if r.model_taxon_id != r.taxon_id %}{{ r.final_taxon_name or "taxon" }} ({{ r.taxon_id }})
<span class="muted">(edited by the
moderator; the model proposed {{ r.taxon_name }})</span>{% else %}{{ r.taxon_name or "" }}
<span class="muted">({{ r.taxon_id }})</span>{% endif %}
{% if r.body %}<blockquote class="body">{{ r.body }}</blockquote>{% endif %}
{% if "text" in (r.edited or "") %}<span class="muted">(text written by the moderator)</span>{% endif %}
</td><td>{{ r.kind }}</td>
<td class="num">{{ "%.3f"|format(r.score) }}</td><td class="num">{{ r.n_photos }}</td>
<td>{{ r.model_version }}</td>
<td>{{ (r.approver or r.posted_as or "") if src == "posted" else r.mode }}</td><td>{{ r.time or "" }}</td>
<td class="o-{{ r.outcome or 'unchecked' }}">{{ r.outcome or "not checked" }}</td>
<td>{{ r.post_state or "" }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">None.</p>{% endif %}
{% endfor %}
<p class="muted">Photos are shown as links, not thumbnails, so this page loads nothing from the network.</p>
{% endif %}
</body></html>
"""

# The page is self-contained: nothing may load or run, whatever a stored field holds. Inline styles only
# (the CSS above and the SVG plots' attributes); no scripts, images, frames, forms or base URL.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'none'")

FATES = ("approved", "edited", "rejected", "skipped", "pending")
PRECISION_TITLES = (("rank", "rank"), ("model_version", "model version"),
                    ("prob_bin", "probability bin"), ("n_photos", "number of photos"))
_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(TEMPLATE)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def label(source: str) -> str:
    return "would have posted" if source == "would-post" else source


def render(figures: dict[str, Any], rows: dict[str, list[dict[str, Any]]], svgs: dict[str, str]) -> str:
    """The whole page as one string."""
    by_moderator: dict[str, dict[str, int]] = {}
    for r in figures.get("moderators", []):
        by_moderator.setdefault(r["moderator"], {})[r["action"]] = r["n"]
    actions = sorted({r["action"] for r in figures.get("moderators", [])})
    return _template.render(f=figures, rows=rows, svgs=svgs, css=CSS, csp=CSP, fates=FATES, outcomes=OUTCOMES,
                            by_moderator=by_moderator, actions=actions,
                            precision_titles=PRECISION_TITLES, pct=pct, label=label)
