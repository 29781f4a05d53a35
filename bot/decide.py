"""The decision rule: a pure function from averaged probabilities, the label taxonomy and the
observation to one decision.  No torch, no HTTP, no database, so it can be tested exhaustively and
reused by the evaluation (the paper's cutoff rule) exactly as the daemon applies it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from bot.config import DecisionConfig
from bot.domain import RANKS, Decision, DecisionKind, Label, Observation, ObservationPrediction, Ranked
from bot.errors import UsageError

# Recorded with every decision: bump it when the rule's behaviour changes, so the audit never mixes
# outcomes of two rules.  2: per-rank cutoffs and the common-ancestor fallback.
RULE_VERSION = 2
ANCESTOR_WINDOW = 15  # common-ancestor: the species considered (iNaturalist's window)
ANCESTOR_MIN_SHARE = 0.01  # ... dropping those under this share of the best one

# Skip reasons, recorded on the decision and counted in the cycle summary.
NOT_A_PLANT = "not a plant"
NO_PHOTOS = "no photos"
NO_LOADABLE_PHOTO = "no loadable photo"
CAPTIVE = "captive or cultivated"
ALREADY_IDENTIFIED = "already identified by the posting account"
ALREADY_AGREES = "observation already at or below the proposed taxon"


def skip_before_inference(obs: Observation, cfg: DecisionConfig, posting_logins: Collection[str] = ()) -> str | None:
    """Reasons known without looking at a single pixel, so no download or inference is wasted."""
    if not obs.is_plant:
        return NOT_A_PLANT
    if not obs.photos:
        return NO_PHOTOS
    if cfg.skip_captive and obs.captive:
        return CAPTIVE
    logins = {login.lower() for login in posting_logins}
    if logins and any(i.current and i.user.login.lower() in logins for i in obs.identifications):
        return ALREADY_IDENTIFIED
    return None


def roll_up(probs: Sequence[float], labels: Sequence[Label], rank: str) -> list[Ranked]:
    """Summed probability per genus or family, best first (labels without that rank are left out)."""
    totals: dict[str, float] = {}
    ids: dict[str, int | None] = {}
    for label, p in zip(labels, probs, strict=True):
        name = label.genus if rank == "genus" else label.family
        if not name:
            continue
        totals[name] = totals.get(name, 0.0) + float(p)
        ids[name] = label.genus_taxon_id if rank == "genus" else label.family_taxon_id
    ranked = [Ranked(name=n, taxon_id=ids[n], prob=t, rank=rank) for n, t in totals.items()]
    return sorted(ranked, key=lambda r: (-r.prob, r.name))


def top_species(probs: Sequence[float], labels: Sequence[Label], k: int) -> list[Ranked]:
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))[:k]
    return [Ranked(name=labels[i].name, taxon_id=labels[i].taxon_id, prob=float(probs[i]), rank=labels[i].rank)
            for i in order]


def _agrees(obs: Observation, taxon_id: int) -> bool:
    """The observation's or community taxon already is the proposal or lies below it."""
    if obs.community_taxon_id == taxon_id:
        return True
    return obs.taxon is not None and obs.taxon.is_within(taxon_id)


def rule_name(cfg: DecisionConfig) -> str:
    """What a decision records as its rule: the fallback and the rule's version, e.g. "summed/2"."""
    return f"{cfg.fallback}/{RULE_VERSION}"


def with_bundle_cutoffs(cfg: DecisionConfig, bundle_cutoffs: Mapping[str, float] | None) -> DecisionConfig:
    """The settings `decide` gets: with `cutoffs = "bundle"`, the bundle's per-rank cutoffs filled in
    (a rank the bundle has none for keeps the config's own); otherwise `cfg` unchanged."""
    if cfg.cutoffs != "bundle":
        return cfg
    if not bundle_cutoffs:
        raise UsageError("[decision] cutoffs = \"bundle\" but the model bundle has no [cutoffs] "
                         "(run `plantbot calibrate` on it first)")
    own = {rank: bundle_cutoffs.get(rank) for rank in RANKS}
    return replace(cfg, cutoffs="config",
                   species_cutoff=own["species"] if own["species"] is not None else cfg.species_cutoff,
                   genus_cutoff=own["genus"] if own["genus"] is not None else cfg.genus_cutoff,
                   family_cutoff=own["family"] if own["family"] is not None else cfg.family_cutoff)


def common_ancestor(probs: Sequence[float], labels: Sequence[Label], threshold: float) -> list[Ranked]:
    """iNaturalist's computer-vision fallback: the top-15 species, those under 1% of the best dropped,
    their scores renormalised to sum to 1 and rolled up; from the best family down, each taxon whose
    rolled-up score reaches `threshold`, deepest first (a genus, its family), never deeper than genus."""
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))[:ANCESTOR_WINDOW]
    if not order or probs[order[0]] <= 0:
        return []
    kept = [labels[i] for i in order if probs[i] >= ANCESTOR_MIN_SHARE * probs[order[0]]]
    total = sum(float(probs[lab.index]) for lab in kept)
    shares = [float(probs[lab.index]) / total for lab in kept]
    families = roll_up(shares, kept, "family")
    if not families or families[0].prob < threshold:
        return []
    members = [(lab, p) for lab, p in zip(kept, shares, strict=True) if lab.family == families[0].name]
    genera = roll_up([p for _, p in members], [lab for lab, _ in members], "genus")
    return ([genera[0]] if genera and genera[0].prob >= threshold else []) + [families[0]]


def _candidates(base: Decision, probs: Sequence[float], labels: Sequence[Label],
                cfg: DecisionConfig) -> list[tuple[DecisionKind, Ranked | None, float]]:
    """(kind, best taxon, cutoff) in the order the rule tries them."""
    out: list[tuple[DecisionKind, Ranked | None, float]] = [
        (DecisionKind.SPECIES, base.top_species[0] if base.top_species else None, cfg.cutoff_for("species"))]
    if cfg.fallback == "common-ancestor":
        out += [(DecisionKind(r.rank), r, cfg.ancestor_threshold)
                for r in common_ancestor(probs, labels, cfg.ancestor_threshold)]
    else:
        for rank in cfg.fallback_ranks:
            out.append((DecisionKind(rank), base.best_genus if rank == "genus" else base.best_family,
                        cfg.cutoff_for(rank)))
    return out


def decide(
    prediction: ObservationPrediction | None,
    labels: Sequence[Label],
    obs: Observation,
    cfg: DecisionConfig,
    posting_logins: Collection[str] = (),
) -> Decision:
    """Species ID if the best species clears its cutoff, else the first fallback taxon that clears its own.

    `cfg` is the settings record as the caller resolved it (see `with_bundle_cutoffs`); the decision
    records the cutoff it was held to and the rule's name and version.
    """
    rule = rule_name(cfg)
    reason = skip_before_inference(obs, cfg, posting_logins)
    if reason is None and (prediction is None or prediction.n_photos == 0):
        reason = NO_LOADABLE_PHOTO
    if reason is not None or prediction is None:
        return Decision(observation_id=obs.id, kind=DecisionKind.SKIP, reasons=(reason or NO_LOADABLE_PHOTO,),
                        rule=rule)
    probs = prediction.probs
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} labels")
    species = top_species(probs, labels, cfg.top_k)
    genera = roll_up(probs, labels, "genus")
    families = roll_up(probs, labels, "family")
    base = Decision(
        observation_id=obs.id, kind=DecisionKind.ABSTAIN, score=species[0].prob if species else 0.0,
        top_species=tuple(species), best_genus=genera[0] if genera else None,
        best_family=families[0] if families else None, n_photos=prediction.n_photos,
        cutoff=cfg.cutoff_for("species"), rule=rule,
    )
    notes: list[str] = []
    for kind, best, cutoff in _candidates(base, probs, labels, cfg):
        if best is None or best.prob < cutoff:
            continue
        if best.taxon_id is None:
            notes.append(f"{kind.value} {best.name} has no platform taxon id")
            continue
        if _agrees(obs, best.taxon_id):
            return replace(base, kind=DecisionKind.SKIP, reasons=(ALREADY_AGREES,), score=best.prob,
                           taxon_id=best.taxon_id, taxon_name=best.name, rank=kind.value, cutoff=cutoff)
        return replace(base, kind=kind, taxon_id=best.taxon_id, taxon_name=best.name, rank=kind.value,
                       score=best.prob, cutoff=cutoff,
                       reasons=(f"{kind.value} probability {best.prob:.3f} >= cutoff {cutoff:.2f}", *notes))
    tried = ", ".join(f"{rank} {cfg.cutoff_for(rank):.2f}" for rank in ("species", *cfg.fallback_ranks))
    if cfg.fallback == "common-ancestor":
        tried = f"species {cfg.cutoff_for('species'):.2f}, common ancestor {cfg.ancestor_threshold:.2f}"
    return replace(base, reasons=(f"nothing reached its cutoff ({tried})", *notes))
