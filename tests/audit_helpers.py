"""Shared builders for the audit, report and retract tests: a known database and a known world.

The scenario (hand-computed outcomes, used by several tests):

taxonomy: family 10 > genus 20 > species 30 > variety 40; genus 20 > species 31;
          family 10 > genus 21 > species 32; family 11 > genus 22 > species 33.

posted (review mode, approved by alice or bob):
  d1  obs 101 species 30, community 30            -> confirmed
  d2  obs 102 species 30, community 40 (variety)  -> refined
  d3  obs 103 species 30 edited to 31, community 32 -> contradicted
  d4  obs 104 species 31, no community taxon      -> pending
  d5  obs 105 species 31, community 20 (above)    -> pending
  d6  obs 106 species 31, observation deleted     -> gone (deleted)
  d7  obs 107 species 32, our ID withdrawn        -> gone (withdrawn)
  d8  obs 108 genus 20 comment, community 31      -> refined
  d9  obs 109 family 10 comment, community 33     -> contradicted
  d10 obs 110 genus 21 comment, comment hidden    -> gone (hidden)
dry-run ("would have posted"):
  d11 obs 111 species 30, community 30            -> confirmed
  d12 obs 112 genus 21, community 30              -> contradicted
not tracked: d13 abstain, d14 proposed (pending in the queue), d15 rejected.

Posted precision = (1 confirmed + 2 refined) / (3 + 2 contradicted) = 0.6;
by rank: species 2/3, genus 1/1, family 0/1.  Dry-run precision = 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Comment, Identification, Observation, Taxon, User
from bot.errors import BudgetExhausted
from bot.store.db import Store
from bot.store.models import DecisionRow, ObservationRow, PhotoRow, PostRow, PredictionRow, ReviewActionRow

T0 = datetime(2026, 3, 1, 12, 0, 0)
TAXA = {  # id: (name, rank, parent)
    1: ("Plantae", "kingdom", None),
    10: ("Rosaceae", "family", 1), 11: ("Fabaceae", "family", 1),
    20: ("Rosa", "genus", 10), 21: ("Rubus", "genus", 10), 22: ("Trifolium", "genus", 11),
    30: ("Rosa canina", "species", 20), 31: ("Rosa rubiginosa", "species", 20),
    32: ("Rubus idaeus", "species", 21), 33: ("Trifolium repens", "species", 22),
    40: ("Rosa canina var. canina", "variety", 30),
}
MODEL_VERSION = "v1"
BOT_LOGIN = "alice"


@dataclass(frozen=True)
class Case:
    decision_id: int
    observation_id: int
    kind: str  # species, genus, family, abstain
    taxon_id: int | None
    score: float
    n_photos: int
    dry_run: bool = False
    status: str = "posted"
    post_kind: str | None = None  # identification, comment (posted only)
    remote_id: int | None = None
    approver: str | None = None
    edited: bool = False  # the moderator changed the taxon to `posted_taxon` before approving
    posted_taxon: int | None = None
    community: int | None = None  # what the world shows at check time
    post_gone: str | None = None  # withdrawn, hidden, deleted (observation)
    expected: str | None = None


CASES = [
    Case(1, 101, "species", 30, 0.95, 3, post_kind="identification", remote_id=5001, approver="alice",
         community=30, expected="confirmed"),
    Case(2, 102, "species", 30, 0.85, 2, post_kind="identification", remote_id=5002, approver="alice",
         community=40, expected="refined"),
    Case(3, 103, "species", 30, 0.45, 1, post_kind="identification", remote_id=5003, approver="bob",
         edited=True, posted_taxon=31, community=32, expected="contradicted"),
    Case(4, 104, "species", 31, 0.55, 1, post_kind="identification", remote_id=5004, approver="bob",
         community=None, expected="pending"),
    Case(5, 105, "species", 31, 0.65, 2, post_kind="identification", remote_id=5005, approver="alice",
         community=20, expected="pending"),
    Case(6, 106, "species", 31, 0.75, 6, post_kind="identification", remote_id=5006, approver="alice",
         community=31, post_gone="deleted", expected="gone"),
    Case(7, 107, "species", 32, 0.35, 1, post_kind="identification", remote_id=5007, approver="alice",
         community=32, post_gone="withdrawn", expected="gone"),
    Case(8, 108, "genus", 20, 0.52, 2, post_kind="comment", remote_id=7008, approver="bob",
         community=31, expected="refined"),
    Case(9, 109, "family", 10, 0.41, 5, post_kind="comment", remote_id=7009, approver="bob",
         community=33, expected="contradicted"),
    Case(10, 110, "genus", 21, 0.44, 1, post_kind="comment", remote_id=7010, approver="alice",
         community=21, post_gone="hidden", expected="gone"),
    Case(11, 111, "species", 30, 0.91, 2, dry_run=True, status="recorded", community=30, expected="confirmed"),
    Case(12, 112, "genus", 21, 0.33, 1, dry_run=True, status="recorded", community=30,
         expected="contradicted"),
    Case(13, 113, "abstain", None, 0.12, 1, dry_run=True, status="recorded"),
    Case(14, 114, "species", 33, 0.70, 1, status="proposed"),
    Case(15, 115, "species", 33, 0.60, 1, status="rejected", approver="bob"),
]
TRACKED = [c for c in CASES if c.expected is not None]


def taxon_name(tid: int | None) -> str | None:
    return TAXA[tid][0] if tid is not None else None


def seed(store: Store, cases: list[Case] = CASES, version: str = MODEL_VERSION) -> None:
    """Writes observations, photos, decisions, predictions, review actions and posts for `cases`."""
    with store.session() as s:
        for i, c in enumerate(cases):
            at = T0 + timedelta(minutes=i)
            s.add(ObservationRow(id=c.observation_id, platform="sim", user_id=2, user_login="observer",
                                 uri=f"http://127.0.0.1/observations/{c.observation_id}",
                                 n_photos=c.n_photos, first_seen_at=at, last_seen_at=at))
            s.add(PhotoRow(observation_id=c.observation_id, photo_id=c.observation_id * 10, position=0,
                           url=f"http://127.0.0.1/photos/{c.observation_id * 10}/medium.jpg", status="ok"))
        s.flush()  # decisions refer to observations, and posts to decisions: insert in that order
        for i, c in enumerate(cases):
            at = T0 + timedelta(minutes=i)
            mode = "dry-run" if c.dry_run else "review"
            s.add(DecisionRow(id=c.decision_id, observation_id=c.observation_id, kind=c.kind,
                              taxon_id=c.taxon_id, taxon_name=taxon_name(c.taxon_id),
                              rank=c.kind if c.taxon_id else None, score=c.score, reasons=[],
                              n_photos=c.n_photos, model_name="plants", model_version=version,
                              cutoff=0.3, dry_run=c.dry_run, mode=mode, status=c.status, created_at=at))
        s.flush()
        for i, c in enumerate(cases):
            at = T0 + timedelta(minutes=i)
            s.add(PredictionRow(decision_id=c.decision_id, rank="species", position=0, taxon_id=30,
                                name="Rosa canina", prob=c.score if c.kind == "species" else c.score / 2))
            s.add(PredictionRow(decision_id=c.decision_id, rank="genus", position=0, taxon_id=20,
                                name="Rosa", prob=c.score))
            if c.approver:
                action = "reject" if c.status == "rejected" else ("edit" if c.edited else "approve")
                s.add(ReviewActionRow(decision_id=c.decision_id, action=action, moderator=c.approver,
                                      edited_taxon_id=c.posted_taxon if c.edited else None,
                                      edited_taxon_name=taxon_name(c.posted_taxon) if c.edited else None,
                                      at=at + timedelta(seconds=30)))
            if c.post_kind:
                s.add(PostRow(decision_id=c.decision_id, observation_id=c.observation_id,
                              model_version=version, action="post", kind=c.post_kind,
                              taxon_id=c.posted_taxon or c.taxon_id,
                              body=f"Posted words for observation {c.observation_id}.",
                              user_login=c.approver or BOT_LOGIN, mode="review", status="posted",
                              remote_id=c.remote_id, attempts=1, created_at=at,
                              completed_at=at + timedelta(seconds=40)))


def ancestry(tid: int) -> tuple[int, ...]:
    chain: list[int] = []
    cur: int | None = tid
    while cur is not None:
        chain.append(cur)
        cur = TAXA[cur][2]
    return tuple(reversed(chain))


def taxon(tid: int) -> Taxon:
    name, rank, _ = TAXA[tid]
    return Taxon(tid, name, rank, ancestor_ids=ancestry(tid))


class FakePlatform:
    """Serves the scenario's observations; counts requests; can run out of budget."""

    name = "fake"
    dry_run = True

    def __init__(self, cases: Sequence[Case], budget: int | None = None) -> None:
        self.cases = {c.observation_id: c for c in cases}
        self.requests: list[list[int]] = []
        self.taxon_requests: list[int] = []
        self.budget = budget

    def observation(self, c: Case) -> Observation:
        idents: list[Identification] = []
        comments: list[Comment] = []
        user = User(1, c.approver or "alice")
        if c.post_kind == "identification" and c.remote_id and c.taxon_id:
            idents.append(Identification(c.remote_id, user, taxon(c.posted_taxon or c.taxon_id),
                                         current=c.post_gone != "withdrawn"))
        if c.post_kind == "comment" and c.remote_id:
            comments.append(Comment(c.remote_id, user, "genus comment", hidden=c.post_gone == "hidden"))
        return Observation(c.observation_id, User(2, "observer"), photos=(),
                           taxon=taxon(c.community) if c.community else None,
                           community_taxon_id=c.community, identifications=tuple(idents),
                           comments=tuple(comments))

    def get_observations(self, ids: Sequence[int]) -> list[Observation]:
        assert len(ids) <= 30
        if self.budget is not None and len(self.requests) >= self.budget:
            raise BudgetExhausted("daily request budget spent")
        self.requests.append(list(ids))
        return [self.observation(self.cases[i]) for i in ids
                if i in self.cases and self.cases[i].post_gone != "deleted"]

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        self.taxon_requests.append(taxon_id)
        return taxon(taxon_id) if taxon_id in TAXA else None
