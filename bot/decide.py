"""The decision rule: a pure function from averaged probabilities, the label taxonomy and the
observation to one decision.  No torch, no HTTP, no database, so it can be tested exhaustively and
reused by the evaluation (the paper's cutoff rule) exactly as the daemon applies it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from bot.config import DecisionConfig
from bot.domain import Decision, DecisionKind, Label, Observation, ObservationPrediction, Ranked

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


def decide(
    prediction: ObservationPrediction | None,
    labels: Sequence[Label],
    obs: Observation,
    cfg: DecisionConfig,
    posting_logins: Collection[str] = (),
) -> Decision:
    """Species ID if the best species clears the cutoff, else the first fallback rank that does."""
    reason = skip_before_inference(obs, cfg, posting_logins)
    if reason is None and (prediction is None or prediction.n_photos == 0):
        reason = NO_LOADABLE_PHOTO
    if reason is not None or prediction is None:
        return Decision(observation_id=obs.id, kind=DecisionKind.SKIP, reasons=(reason or NO_LOADABLE_PHOTO,))
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
    )
    candidates: list[tuple[DecisionKind, Ranked | None]] = [(DecisionKind.SPECIES, species[0] if species else None)]
    for rank in cfg.fallback_ranks:
        candidates.append((DecisionKind(rank), base.best_genus if rank == "genus" else base.best_family))
    notes: list[str] = []
    for kind, best in candidates:
        if best is None or best.prob < cfg.cutoff:
            continue
        if best.taxon_id is None:
            notes.append(f"{kind.value} {best.name} has no platform taxon id")
            continue
        if _agrees(obs, best.taxon_id):
            return replace(base, kind=DecisionKind.SKIP, reasons=(ALREADY_AGREES,), score=best.prob,
                            taxon_id=best.taxon_id, taxon_name=best.name, rank=kind.value)
        return replace(base, kind=kind, taxon_id=best.taxon_id, taxon_name=best.name, rank=kind.value,
                        score=best.prob, reasons=(f"{kind.value} probability {best.prob:.3f} >= cutoff "
                                                  f"{cfg.cutoff:.2f}", *notes))
    return replace(base, reasons=(f"nothing reached the cutoff {cfg.cutoff:.2f}", *notes))

