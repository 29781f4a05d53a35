"""The older Rails API that independent iNaturalist forks serve (the original Natusfera, ...).

Its list has no `id_above`: pages come newest first.  So a poll walks pages until it reaches an id at
or below the cursor, then yields what it found oldest first, so the cursor (saved after each page is
recorded) only ever moves over observations that were recorded.  Writes are form posts authorised by
an OAuth access token, which does not expire there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

from bot.domain import Observation, Taxon, User
from bot.errors import PlatformError
from bot.platforms.adapter import AdapterBase, Readers
from bot.platforms.base import ObservationPage, Rejected, created_within
from bot.platforms.parse_legacy import (
    parse_legacy_comment,
    parse_legacy_identification,
    parse_legacy_observation,
    parse_legacy_taxon,
)
from bot.platforms.parse_v1 import ParseError, opt_time, parse_each, parse_results, raw_id, req_int, req_str
from bot.platforms.session import NotFound

log = logging.getLogger(__name__)

IDS_PER_REQUEST = 30  # ids in one batched read (the v1 limit; forks page lists at 30 by default)
MAX_PAGES = 50  # 10,000 observations a poll at 200 a page: the list API's own paging limit


class LegacyPlatform(AdapterBase):
    """A legacy Rails fork (Natusfera and others): the site's own `.json` pages, newest first;
    writes are form posts (see the module doc)."""

    flavor = "legacy"
    readers = Readers(parse_legacy_identification, parse_legacy_comment)

    @property
    def site(self) -> str:
        return self.pcfg.site_url.rstrip("/")

    def list_params(self, page: int) -> dict[str, Any]:
        # `extra=fields`: the Rails list adds observation_field_values (opt-out and habit fields) only when asked
        params: dict[str, Any] = {"has[]": "photos", "iconic_taxa[]": "Plantae", "extra": "fields",
                                  "per_page": self.pcfg.per_page, "page": page}
        if self.pcfg.place_id is not None:
            params["place_id"] = self.pcfg.place_id
        if self.pcfg.project_id is not None:
            params["projects[]"] = self.pcfg.project_id  # the Rails name
            params["project_id"] = self.pcfg.project_id  # what some forks read instead
        if self.pcfg.quality_grade is not None:
            params["quality_grade"] = self.pcfg.quality_grade
        return params

    gap: str | None = None  # set when a poll could not list every new observation

    def _new_raw(self, cursor: int, keep: Callable[[Any, int], bool] | None = None,
                 past: Callable[[Any], bool] | None = None) -> list[Any]:
        """Raw records above `cursor`, oldest first, walking pages (newest first) until the cursor is reached.

        `keep` narrows the records taken; `past` marks a record beyond which every later page is too old.
        """
        by_id: dict[int, Any] = {}
        no_id: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            doc = self._list(page, self.pcfg.per_page)
            ids = [raw_id(r) for r in doc]
            for raw, rid in zip(doc, ids, strict=True):
                if rid is None:
                    no_id.append(raw)
                elif rid > cursor and (keep is None or keep(raw, rid)):
                    by_id[rid] = raw  # a record seen twice (the list shifted meanwhile) counts once
            known = [i for i in ids if i is not None]
            # Only an empty page or the cursor ends the walk: a fork may cap per_page below ours.
            if not doc or (known and min(known) <= cursor) or (past is not None and any(map(past, doc))):
                break
        else:
            self.gap = (f"the list stopped after {MAX_PAGES} pages: observations between id {cursor} and "
                        f"{min(by_id, default=cursor)} were not listed")
            log.warning("legacy poll: %s", self.gap)
        return [by_id[i] for i in sorted(by_id)] + no_id

    def _list(self, page: int, per_page: int) -> list[Any]:
        url = f"{self.site}/observations.json"
        doc = self.http.request("GET", url, params={**self.list_params(page), "per_page": per_page})
        if not isinstance(doc, list):
            raise PlatformError(f"GET {url}: expected a JSON list, got {type(doc).__name__}")
        return doc

    def get_newest_id(self) -> int | None:
        """The newest matching observation's id: one request for the first record of the list."""
        doc = self._list(1, 1)
        if doc and raw_id(doc[0]) is None:
            raise PlatformError(f"GET {self.site}/observations.json: the first record has no usable id")
        return raw_id(doc[0]) if doc else None

    def get_first_id_since(self, since: date) -> int | None:
        """The list has no creation filter: walk it (newest first) to the first record created before `since`."""
        after = datetime.combine(since, time(), UTC)
        found: int | None = None
        for page in range(1, MAX_PAGES + 1):
            doc = self._list(page, self.pcfg.per_page)
            for raw in doc:
                rid = raw_id(raw)
                if _created(raw) is not None and not created_within(_created(raw), after, None):
                    return found
                if rid is not None:
                    found = rid if found is None else min(found, rid)
            if not doc:
                return found
        raise PlatformError(f"{since} lies more than {MAX_PAGES} pages back in this platform's list; "
                            "set [platform] start to an observation id instead")

    def get_older_observations(self, after_id: int, before_id: int, since: datetime | None,
                               until: datetime | None) -> Iterator[ObservationPage]:
        """A backfill: the list has no id or date filters, so the walk filters and stops at `since`."""
        def keep(raw: Any, rid: int) -> bool:
            return rid < before_id and created_within(_created(raw), since, until)

        def past(raw: Any) -> bool:
            created = _created(raw)
            return since is not None and created is not None and not created_within(created, since, None)

        self.gap = None
        yield from self._paged(self._new_raw(after_id, keep, past), after_id)

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]:
        self.gap = None
        yield from self._paged(self._new_raw(cursor), cursor)

    def _paged(self, raw: list[Any], cursor: int) -> Iterator[ObservationPage]:
        size = self.pcfg.per_page
        for start in range(0, len(raw), size):
            chunk = raw[start:start + size]
            observations, rejected, last_id = parse_results(chunk, parse_legacy_observation, key=None, cursor=cursor,
                                                            max_jump=self.pcfg.max_id_jump)
            if start == 0 and self.gap:  # reported with the first page, so the cycle counts and logs it
                rejected = [Rejected(None, self.gap), *rejected]
            if last_id <= cursor:  # only id-less junk left
                rejected = [replace(r, observation_id=None) for r in rejected]
                yield ObservationPage([], rejected, cursor)
                return
            yield ObservationPage(observations, rejected, last_id)
            cursor = last_id

    def _raw_observation(self, observation_id: int) -> dict[str, Any]:
        doc = self.http.request("GET", f"{self.site}/observations/{int(observation_id)}.json")
        if not isinstance(doc, dict):
            raise PlatformError(f"observation {observation_id}: expected a JSON object")
        return doc

    def get_observations(self, ids: Sequence[int]) -> list[Observation]:
        """Observations by id: one list request per `per_page` ids (`id[]=` with
        `extra=identifications`); a fork that ignores the `id[]` filter is read one observation a
        request from then on.  Comments are not in the list: an observation with comments is read
        on its own for them."""
        unique = list(dict.fromkeys(int(i) for i in ids))
        raw: dict[int, dict[str, Any]] = {}
        size = max(1, min(self.pcfg.per_page, IDS_PER_REQUEST))
        for start in range(0, len(unique), size):
            chunk = unique[start:start + size]
            raw.update(self._raw_batch(chunk) if self.batch_reads else self._raw_each(chunk))
        found = []
        for oid in unique:
            if oid not in raw:
                continue
            try:
                found.append(parse_legacy_observation(raw[oid]))
            except (ParseError, ValueError, TypeError) as exc:
                log.warning("observation %s could not be parsed: %s", oid, exc)
        return found

    batch_reads = True  # False once the fork has shown that it ignores `id[]`

    def _raw_batch(self, chunk: list[int]) -> dict[int, dict[str, Any]]:
        # Rails reads repeated `id[]=` keys; the session would join a list into one comma string.
        query = urlencode([("id[]", i) for i in chunk] + [("extra", "identifications,fields"),
                                                          ("per_page", len(chunk))])
        doc = self.http.request("GET", f"{self.site}/observations.json?{query}")
        if not isinstance(doc, list):
            raise PlatformError(f"GET {self.site}/observations.json: expected a JSON list")
        got = {raw_id(r): r for r in doc if isinstance(r, dict)}
        if set(got) - set(chunk) or any("identifications" not in r for r in got.values()):
            log.info("this fork ignores id[] or extra=identifications; reading observations one by one")
            self.batch_reads = False
            return self._raw_each(chunk)
        for oid, rec in got.items():
            if oid is not None and int(rec.get("comments_count") or 0) > 0:
                try:
                    rec["comments"] = self._raw_observation(oid).get("comments") or []
                except NotFound:
                    continue
        return {oid: r for oid, r in got.items() if oid is not None}

    def _raw_each(self, chunk: list[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for oid in chunk:
            try:
                out[oid] = self._raw_observation(oid)
            except NotFound:
                continue
        return out

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        try:
            doc = self.http.request("GET", f"{self.site}/taxa/{int(taxon_id)}.json")
        except NotFound:
            return None
        taxa = parse_each([doc], parse_legacy_taxon, "taxon")
        return taxa[0] if taxa else None

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]:
        params: dict[str, Any] = {"q": name, "per_page": 30}
        if rank:
            params["rank"] = rank
        doc = self.http.request("GET", f"{self.site}/taxa/search.json", params=params)
        taxa = parse_each(doc, parse_legacy_taxon, "taxon")
        return [t for t in taxa if t is not None and (rank is None or t.rank == rank)]

    def autocomplete_taxa(self, text: str, limit: int = 10) -> list[Taxon]:
        """The Rails API has no autocomplete: its taxa search answers the same question."""
        return self.search_taxa(text)[:limit]

    def get_current_user(self, token: str) -> User:
        doc = self._authed("GET", f"{self.site}/users/edit.json", token)
        try:
            d = doc if isinstance(doc, dict) else {}
            return User(id=req_int(d.get("id"), "users/edit.id"), login=req_str(d.get("login"), "users/edit.login"))
        except ParseError as exc:
            raise PlatformError(f"GET {self.site}/users/edit.json: {exc}") from None

    # --- writes: form fields, as the Rails API takes them ------------------------------------------

    def post_identification(self, token: str, observation_id: int, taxon_id: int, body: str) -> int:
        data = {"identification[observation_id]": int(observation_id), "identification[taxon_id]": int(taxon_id),
                "identification[body]": body}
        doc = self._authed("POST", f"{self.site}/identifications.json", token, data=data)
        return self._created_id(doc, "identification")

    def post_comment(self, token: str, observation_id: int, body: str) -> int:
        data = {"comment[parent_type]": "Observation", "comment[parent_id]": int(observation_id),
                "comment[body]": body}
        doc = self._authed("POST", f"{self.site}/comments.json", token, data=data)
        return self._created_id(doc, "comment")

    def update_identification(self, token: str, identification_id: int, current: bool) -> None:
        data = {"identification[current]": "true" if current else "false"}
        self._authed("PUT", f"{self.site}/identifications/{int(identification_id)}.json", token, data=data)


def _created(raw: Any) -> datetime | None:
    """A list record's creation time (aware), when it has a readable one."""
    if not isinstance(raw, dict):
        return None
    created = opt_time(raw.get("created_at_utc") or raw.get("created_at"))
    return created if created is None or created.tzinfo else created.replace(tzinfo=UTC)
