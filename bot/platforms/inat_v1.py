"""iNaturalist API v1 (api.inaturalist.org/v1 and the network sites such as iNaturalist Spain).

Polling follows iNaturalist's recommended practice: `order_by=id&order=asc&id_above=<last id>` with
`per_page=200`, page after page until a short page, so new observations are read once, oldest first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from bot.domain import Observation, Taxon, User
from bot.errors import PlatformError
from bot.platforms.adapter import AdapterBase, Readers
from bot.platforms.base import ObservationPage, created_within
from bot.platforms.parse_v1 import (
    ParseError,
    as_dict,
    as_list,
    parse_comment,
    parse_each,
    parse_identification,
    parse_results,
    parse_taxon,
    parse_user,
    raw_id,
    req_int,
)
from bot.platforms.session import NotFound

log = logging.getLogger(__name__)

IDS_PER_REQUEST = 30


class InatV1Platform(AdapterBase):
    """iNaturalist's API v1 (and the simulator's copy of it): JSON results under `results`."""

    flavor = "inat-v1"
    readers = Readers(parse_identification, parse_comment)

    @property
    def api(self) -> str:
        return self.pcfg.api_url.rstrip("/")

    # --- reads ---------------------------------------------------------------------------------------

    def filters(self) -> dict[str, Any]:
        """What every listing asks for: plants with photos, narrowed by the configured filters."""
        params: dict[str, Any] = {"iconic_taxa": "Plantae", "photos": "true"}
        for key in ("place_id", "project_id", "quality_grade", "site_id"):
            value = getattr(self.pcfg, key)
            if value is not None:
                params[key] = value
        return params

    def poll_params(self, cursor: int) -> dict[str, Any]:
        return {**self.filters(), "order_by": "id", "order": "asc", "id_above": cursor, "per_page": self.pcfg.per_page}

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]:
        return self._pages(cursor, {})

    def get_older_observations(self, after_id: int, before_id: int, since: datetime | None,
                               until: datetime | None) -> Iterator[ObservationPage]:
        """Ids in (after_id, before_id) created in [since, until), oldest first: what a backfill decides."""
        extra: dict[str, Any] = {"id_below": before_id}
        if since is not None:
            extra["created_d1"] = since.isoformat()
        if until is not None:
            extra["created_d2"] = (until - timedelta(seconds=1)).isoformat()
        for page in self._pages(after_id, extra):
            kept = [o for o in page.observations if created_within(o.created_at, since, until)]
            yield ObservationPage(kept, page.rejected, page.last_id)

    def _pages(self, cursor: int, extra: dict[str, Any]) -> Iterator[ObservationPage]:
        while True:
            url = f"{self.api}/observations"
            doc = self.http.request("GET", url, params={**self.poll_params(cursor), **extra})
            try:
                observations, rejected, last_id = parse_results(doc, cursor=cursor, max_jump=self.pcfg.max_id_jump)
            except ParseError as exc:
                raise PlatformError(f"GET {url}: {exc}") from None
            count = len(doc["results"])
            if count == 0:
                return
            if last_id <= cursor:
                log.warning("page after id %s has no usable ids; stopping this poll", cursor)
                return
            observations = sorted((o for o in observations if o.id > cursor), key=lambda o: o.id)
            yield ObservationPage(observations, rejected, last_id)
            if count < self.pcfg.per_page:
                return
            cursor = last_id

    def get_newest_id(self) -> int | None:
        """The newest matching observation's id: one request, where `start = "now"` begins."""
        return self._first_id({**self.filters(), "order_by": "id", "order": "desc", "per_page": 1})

    def get_first_id_since(self, since: date) -> int | None:
        """The first matching observation created on or after `since` (None: none yet)."""
        return self._first_id({**self.filters(), "created_d1": since.isoformat(), "order_by": "id", "order": "asc",
                               "per_page": 1})

    def _first_id(self, params: dict[str, Any]) -> int | None:
        url = f"{self.api}/observations"
        doc = self.http.request("GET", url, params=params)
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            raise PlatformError(f"GET {url}: the answer has no results list")
        found = raw_id(results[0]) if results else None
        if results and found is None:
            raise PlatformError(f"GET {url}: the first result has no usable id")
        return found

    def get_observations(self, ids: Sequence[int]) -> list[Observation]:
        found: list[Observation] = []
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), IDS_PER_REQUEST):
            chunk = unique[start:start + IDS_PER_REQUEST]
            url = f"{self.api}/observations/{','.join(map(str, chunk))}"
            try:
                doc = self.http.request("GET", url, params={"per_page": len(chunk)})
            except NotFound:
                continue
            try:
                observations, rejected, _ = parse_results(doc)
            except ParseError as exc:
                raise PlatformError(f"GET {url}: {exc}") from None
            for r in rejected:
                log.warning("observation %s could not be parsed: %s", r.observation_id, r.reason)
            found.extend(observations)
        return found

    def _raw_observation(self, observation_id: int) -> dict[str, Any]:
        doc = self.http.request("GET", f"{self.api}/observations/{int(observation_id)}")
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise NotFound(f"observation {observation_id} not found")
        return results[0]

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        try:
            doc = self.http.request("GET", f"{self.api}/taxa/{int(taxon_id)}")
        except NotFound:
            return None
        taxa = parse_each(doc.get("results") if isinstance(doc, dict) else None, parse_taxon, "taxon")
        return next((t for t in taxa if t is not None and t.id == taxon_id), None)

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]:
        params: dict[str, Any] = {"q": name, "is_active": "true", "per_page": 30}
        if rank:
            params["rank"] = rank
        doc = self.http.request("GET", f"{self.api}/taxa", params=params)
        taxa = parse_each(doc.get("results") if isinstance(doc, dict) else None, parse_taxon, "taxon")
        return [t for t in taxa if t is not None and (rank is None or t.rank == rank)]

    def get_species_counts(self, place_id: int, page: int, per_page: int = 500) -> tuple[list[tuple[Taxon, int]], int]:
        """One page of the plant taxa recorded in a place (leaf taxa, verifiable observations) with their
        observation counts, and the total number of taxa."""
        params = {"place_id": int(place_id), "iconic_taxa": "Plantae", "verifiable": "true",
                  "per_page": per_page, "page": page}
        url = f"{self.api}/observations/species_counts"
        doc = self.http.request("GET", url, params=params)
        try:
            results = as_list(as_dict(doc, "response").get("results"), "results")
            total = req_int(as_dict(doc, "response").get("total_results"), "total_results")
        except ParseError as exc:
            raise PlatformError(f"GET {url}: {exc}") from None
        out: list[tuple[Taxon, int]] = []
        for i, item in enumerate(results):
            try:
                entry = as_dict(item, f"results[{i}]")
                taxon = parse_taxon(entry.get("taxon"), f"results[{i}].taxon")
                if taxon is not None:
                    out.append((taxon, req_int(entry.get("count"), f"results[{i}].count")))
            except (ParseError, ValueError, TypeError) as exc:
                log.warning("species_counts: skipping an unparseable entry: %s", exc)
        return out, total

    def autocomplete_taxa(self, text: str, limit: int = 10) -> list[Taxon]:
        params: dict[str, Any] = {"q": text, "is_active": "true", "per_page": max(1, min(limit, 30))}
        doc = self.http.request("GET", f"{self.api}/taxa/autocomplete", params=params)
        taxa = parse_each(doc.get("results") if isinstance(doc, dict) else None, parse_taxon, "taxon")
        return [t for t in taxa if t is not None][:limit]

    def get_current_user(self, token: str) -> User:
        doc = self._authed("GET", f"{self.api}/users/me", token)
        results = doc.get("results") if isinstance(doc, dict) else None
        try:
            return parse_user(results[0] if isinstance(results, list) and results else None, "users/me")
        except ParseError as exc:
            raise PlatformError(f"GET {self.api}/users/me: {exc}") from None

    # --- writes (none leaves the process in dry-run) -------------------------------------------------

    def post_identification(self, token: str, observation_id: int, taxon_id: int, body: str) -> int:
        payload = {"identification": {"observation_id": int(observation_id), "taxon_id": int(taxon_id),
                                      "body": body}}  # never vision=true: that flag means iNat's own CV
        doc = self._authed("POST", f"{self.api}/identifications", token, json=payload)
        return self._created_id(doc, "identification")

    def post_comment(self, token: str, observation_id: int, body: str) -> int:
        payload = {"comment": {"parent_type": "Observation", "parent_id": int(observation_id), "body": body}}
        doc = self._authed("POST", f"{self.api}/comments", token, json=payload)
        return self._created_id(doc, "comment")

    def update_identification(self, token: str, identification_id: int, current: bool) -> None:
        payload = {"identification": {"current": bool(current)}}
        self._authed("PUT", f"{self.api}/identifications/{int(identification_id)}", token, json=payload)
