"""A small in-memory Platform and row builders for the posting and daemon unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Config
from bot.domain import Comment, Identification, Observation, Taxon, User
from bot.errors import PlatformError
from bot.platforms.base import ObservationPage
from bot.store import Store
from bot.store.models import DecisionRow, ObservationRow


def http_error(status: int) -> PlatformError:
    """A platform error carrying an HTTP status the way the adapter's `Http` reports it (a field)."""
    return PlatformError(f"HTTP {status}", status=status)


@dataclass
class Write:
    kind: str
    token: str
    observation_id: int
    taxon_id: int | None
    body: str


@dataclass
class FakePlatform:
    """Records writes; `failures` are raised by the next writes (after storing, when `store_first`)."""

    dry_run: bool = False
    name: str = "fake"
    users: dict[str, str] = field(default_factory=lambda: {"tok-mod": "moderator", "tok-bot": "plantbot",
                                                           "tok-new": "plantbot"})
    writes: list[Write] = field(default_factory=list)
    idents: dict[int, list[Identification]] = field(default_factory=dict)
    comments: dict[int, list[Comment]] = field(default_factory=dict)
    failures: list[tuple[BaseException, bool]] = field(default_factory=list)  # (error, store_first)
    observations: dict[int, Observation] = field(default_factory=dict)
    on_send: Callable[[int], None] | None = None  # run before a write is stored
    next_id: int = 9000

    def get_current_user(self, token: str) -> User:
        return User(1, self.users[token])

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]:
        return iter(())

    def get_observations(self, ids: Sequence[int]) -> list[Observation]:
        return [self.observations[i] for i in ids if i in self.observations]

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]:
        return []

    def update_identification(self, token: str, identification_id: int, current: bool) -> None:
        raise AssertionError("not used by posting")

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        return Taxon(taxon_id, f"Taxon {taxon_id}", "species")

    def get_identifications(self, observation_id: int) -> list[Identification]:
        return list(self.idents.get(observation_id, []))

    def get_comments(self, observation_id: int) -> list[Comment]:
        return list(self.comments.get(observation_id, []))

    def _write(self, write: Write) -> int:
        if self.on_send is not None:
            self.on_send(write.observation_id)
        self.writes.append(write)
        failure = self.failures.pop(0) if self.failures else None
        if failure and not failure[1]:
            raise failure[0]
        if write.token not in self.users:
            raise http_error(401)
        self.next_id += 1
        user = User(1, self.users[write.token])
        if write.kind == "identification":
            assert write.taxon_id is not None
            self.idents.setdefault(write.observation_id, []).append(
                Identification(self.next_id, user, Taxon(write.taxon_id, "x", "species"), body=write.body))
        else:
            self.comments.setdefault(write.observation_id, []).append(Comment(self.next_id, user, write.body))
        if failure:
            raise failure[0]
        return self.next_id

    def post_identification(self, token: str, observation_id: int, taxon_id: int, body: str) -> int:
        return self._write(Write("identification", token, observation_id, taxon_id, body))

    def post_comment(self, token: str, observation_id: int, body: str) -> int:
        return self._write(Write("comment", token, observation_id, None, body))

    def count(self, observation_id: int) -> int:
        return len(self.idents.get(observation_id, [])) + len(self.comments.get(observation_id, []))


def make_config(tmp: Path, mode: str = "review", **posting: object) -> Config:
    cfg = Config()
    cfg.platform.api_url = "http://127.0.0.1:1/v1"
    cfg.platform.site_url = "http://127.0.0.1:1"
    cfg.store.database = str(tmp / "plantbot.sqlite3")
    cfg.posting.mode = mode
    if mode == "auto":
        cfg.posting.allow_unreviewed = True
    for key, value in posting.items():
        setattr(cfg.posting, key, value)
    return cfg


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def add_decision(store: Store, observation_id: int, *, kind: str = "species", taxon_id: int | None = 401,
                 taxon_name: str = "Rosa canina", status: str = "proposed", mode: str = "review",
                 model_name: str = "designed", model_version: str = "1", login: str = "observer",
                 score: float = 0.87, n_photos: int = 3) -> int:
    rank = {"species": "species", "genus": "genus", "family": "family"}.get(kind)
    with store.session() as s:
        if s.get(ObservationRow, observation_id) is None:
            s.add(ObservationRow(id=observation_id, platform="fake", user_id=7, user_login=login,
                                 first_seen_at=now(), last_seen_at=now(), n_photos=n_photos))
            s.flush()
        row = DecisionRow(observation_id=observation_id, kind=kind, taxon_id=taxon_id, taxon_name=taxon_name,
                          rank=rank, score=score, reasons=[], n_photos=n_photos, model_name=model_name,
                          model_version=model_version, cutoff=0.3, dry_run=mode == "dry-run", mode=mode,
                          status=status, created_at=now())
        s.add(row)
        s.flush()
        return row.id


def crash_restart(store: Store) -> None:
    """What a restart after a kill -9 finds: the process that opened the intents no longer exists."""
    import socket
    import subprocess

    from sqlalchemy import update

    from bot.store.models import PostRow

    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no live process
    with store.session() as s:
        s.execute(update(PostRow).where(PostRow.status == "intent")
                  .values(owner=f"{socket.gethostname()}:{gone.pid}"))
