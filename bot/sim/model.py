"""The simulator's world: taxa, users, observations and photo bytes, as plain JSON-able records.

Tests build a World in Python; `plantbot sim --world DIR` loads one saved with `World.save`.
The server renders these into the real API's JSON shapes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SimTaxon:
    id: int
    name: str
    rank: str  # kingdom, phylum, class, order, family, genus, species
    parent_id: int | None = None
    iconic_taxon_name: str | None = "Plantae"
    rank_level: float | None = None


@dataclass
class SimUser:
    id: int
    login: str
    password: str = "password"


@dataclass
class SimIdentification:
    id: int
    user_id: int
    taxon_id: int
    current: bool = True
    body: str = ""
    vision: bool = False
    category: str = "improving"
    hidden: bool = False
    created_at: str = "2026-01-01T00:00:00+00:00"


@dataclass
class SimComment:
    id: int
    user_id: int
    body: str
    hidden: bool = False
    created_at: str = "2026-01-01T00:00:00+00:00"


@dataclass
class SimAnnotation:
    """An annotation (controlled term) as iNaturalist v1 serves it; a Rails fork's JSON has none."""

    attribute_id: int
    value_id: int
    user_id: int
    vote_score: int = 0


@dataclass
class SimObservation:
    id: int
    user_id: int
    photo_ids: list[int]
    taxon_id: int | None = None  # the observation's current taxon
    community_taxon_id: int | None = None
    captive: bool = False
    quality_grade: str = "needs_id"
    identifications: list[SimIdentification] = field(default_factory=list)
    comments: list[SimComment] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    ofvs: dict[str, str] = field(default_factory=dict)
    annotations: list[SimAnnotation] = field(default_factory=list)
    created_at: str = "2026-01-01T00:00:00+00:00"
    place_ids: list[int] = field(default_factory=list)
    project_ids: list[int] = field(default_factory=list)
    site_id: int = 1
    deleted: bool = False
    release_after_s: float = 0.0  # hidden until this many seconds after the server started (demo streams)
    true_taxon_id: int | None = None  # the synthetic world's ground truth; the server never serves it
    # Hostile-platform tests: top-level JSON fields served in place of the rendered ones (an id of
    # 2**64, "1007.0", a javascript: uri...), in v1 and legacy answers alike.
    served: dict[str, Any] = field(default_factory=dict)
    observed_at: str | None = None  # when the observer saw it (default: created_at)
    place_guess: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    positional_accuracy: int | None = None  # metres
    description: str | None = None


@dataclass
class SimPlace:
    """A place observations can lie in (GET /v1/observations?place_id=…, species_counts)."""

    id: int
    name: str
    parent_id: int | None = None


@dataclass
class World:
    taxa: dict[int, SimTaxon] = field(default_factory=dict)
    users: dict[int, SimUser] = field(default_factory=dict)
    observations: dict[int, SimObservation] = field(default_factory=dict)
    photos: dict[int, bytes] = field(default_factory=dict)  # photo id -> JPEG bytes (largest size)
    places: dict[int, SimPlace] = field(default_factory=dict)

    def ancestor_ids(self, taxon_id: int) -> list[int]:
        """Root first, ending with the taxon itself, as the API's `ancestor_ids`."""
        chain: list[int] = []
        current: int | None = taxon_id
        while current is not None and current in self.taxa:
            chain.append(current)
            current = self.taxa[current].parent_id
        return list(reversed(chain))

    def iconic_taxon_name(self, taxon_id: int | None) -> str | None:
        return self.taxa[taxon_id].iconic_taxon_name if taxon_id in self.taxa else None

    def next_id(self, kind: str) -> int:
        """Fresh ids for things the server creates (identifications, comments)."""
        if kind == "identification":
            existing = [i.id for o in self.observations.values() for i in o.identifications]
        elif kind == "comment":
            existing = [c.id for o in self.observations.values() for c in o.comments]
        elif kind == "observation":
            existing = list(self.observations)
        else:
            existing = list(self.photos)
        return max(existing, default=0) + 1

    def save(self, folder: str | Path) -> None:
        """world.json plus photos/<id>.jpg."""
        root = Path(folder)
        (root / "photos").mkdir(parents=True, exist_ok=True)
        for pid, data in self.photos.items():
            (root / "photos" / f"{pid}.jpg").write_bytes(data)
        doc = {
            "taxa": [asdict(t) for t in self.taxa.values()],
            "users": [asdict(u) for u in self.users.values()],
            "observations": [asdict(o) for o in self.observations.values()],
            "places": [asdict(p) for p in self.places.values()],
        }
        (root / "world.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> World:
        root = Path(folder)
        doc = json.loads((root / "world.json").read_text(encoding="utf-8"))
        world = cls()
        for t in doc["taxa"]:
            world.taxa[t["id"]] = SimTaxon(**t)
        for u in doc["users"]:
            world.users[u["id"]] = SimUser(**u)
        for o in doc["observations"]:
            o["identifications"] = [SimIdentification(**i) for i in o.get("identifications", [])]
            o["comments"] = [SimComment(**c) for c in o.get("comments", [])]
            world.observations[o["id"]] = SimObservation(**o)
        for p in doc.get("places", []):
            world.places[p["id"]] = SimPlace(**p)
        for path in (root / "photos").glob("*.jpg"):
            world.photos[int(path.stem)] = path.read_bytes()
        return world
