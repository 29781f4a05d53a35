"""Dataset commands: manifests from a folder, from the platform (interrupted and resumed), labels resolve."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.classifier.bundle import read_labels, write_labels
from bot.domain import Annotation, Label, Observation, Photo, Taxon, User
from bot.platforms.base import ObservationPage
from bot.sim.model import World
from bot.sim.world import PLACE_ID, WorldSpec, make_taxonomy, make_world, write_image_folder
from bot.training.collect import CollectOptions, HabitRule, collect_from_platform
from bot.training.labels import resolve_labels

LABELS_HEADER = "index,taxon_id,name,rank,genus_taxon_id,genus,family_taxon_id,family"


def _invoke(args: list[str]):  # type: ignore[no-untyped-def]
    from bot.cli import main  # imported here: the library tests need not load every command

    return CliRunner().invoke(main, args)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- from-folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:  # type: ignore[type-arg]
    _, species = make_taxonomy(WorldSpec(families=2, genera_per_family=1, species_per_genus=2))
    root = write_image_folder(species, tmp_path_factory.mktemp("imgs") / "root", per_species=12, seed=0,
                              size=(32, 24))
    return root, species


def test_from_folder_writes_grouped_split_manifests(folder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, species = folder
    out = tmp_path / "ds"
    result = _invoke(["dataset", "from-folder", str(root), "--taxonomy", str(root / "taxonomy.csv"),
                                       "--tags", str(root / "tags.csv"), "--test-fraction", "0.25",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "labels.csv").read_text().splitlines()[0] == LABELS_HEADER
    labels = read_labels(out / "labels.csv")
    assert [(lab.name, lab.taxon_id, lab.genus_taxon_id, lab.family) for lab in labels] == [
        (s.name, s.taxon_id, s.genus_taxon_id, s.family) for s in species]
    train, test = _rows(out / "train.csv"), _rows(out / "test.csv")
    rows = train + test
    assert {"path", "label", "observation_id", "tag"} <= set(rows[0])
    # every photo exactly once, with its species' label and its tag from tags.csv
    tags = {str(root / r["path"]): r["tag"] for r in _rows(root / "tags.csv")}
    assert sorted(r["path"] for r in rows) == sorted(tags)
    for r in rows:
        assert Path(r["path"]).parent.name == r["label"] and r["tag"] == tags[r["path"]]
    # pseudo-observations: 1-4 consecutive photos of one species, never split across train and test
    groups: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(r["observation_id"], []).append(r)
    assert {r["observation_id"] for r in train}.isdisjoint({r["observation_id"] for r in test})
    assert any(len(g) > 1 for g in groups.values())
    for g in groups.values():
        assert 1 <= len(g) <= 4 and len({r["label"] for r in g}) == 1
        names = sorted(Path(r["path"]).name for r in g)
        numbers = [int(n.split(".")[0]) for n in names]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    for sp in species:  # every species is both trained and tested
        assert any(r["label"] == sp.name for r in test) and any(r["label"] == sp.name for r in train)


def test_from_folder_manifest_feeds_training(folder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = pytest.importorskip("bot.training.data")
    root, species = folder
    from bot.training.dataset import from_folder

    summary = from_folder(root, root / "taxonomy.csv", tmp_path, tags=root / "tags.csv")
    paths, targets, tags = data.training_photos(tmp_path / "train.csv", read_labels(tmp_path / "labels.csv"))
    assert len(paths) == summary.train_photos and all(p.is_file() for p in paths)
    assert set(targets) == set(range(len(species)))


def test_from_folder_rejects_unknown_species_folders(folder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, species = folder
    taxonomy = tmp_path / "taxonomy.csv"
    taxonomy.write_text("name,genus,family\n" + "".join(f"{s.name},{s.genus},{s.family}\n" for s in species[1:]))
    result = _invoke(["dataset", "from-folder", str(root), "--taxonomy", str(taxonomy),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "not in the taxonomy" in result.output and species[0].name in result.output
    taxonomy.write_text("name,genus\nA b,A\n")
    result = _invoke(["dataset", "from-folder", str(root), "--taxonomy", str(taxonomy),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "missing column(s) family" in result.output


# ---------------------------------------------------------------- labels resolve


class FakeTaxa:
    """search_taxa over a fixed list, as loose as the real search (substring, optional rank)."""

    def __init__(self, taxa: list[Taxon]) -> None:
        self.taxa = taxa
        self.calls: list[tuple[str, str | None]] = []

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]:
        self.calls.append((name, rank))
        return [t for t in self.taxa if name.lower() in t.name.lower() and (rank is None or t.rank == rank)]


PLANT = (47126,)
TAXA = [
    Taxon(10, "Rosaceae", "family", PLANT, iconic_taxon_name="Plantae"),
    Taxon(11, "Rosa", "genus", (*PLANT, 10), iconic_taxon_name="Plantae"),
    Taxon(12, "Rosa canina", "species", (*PLANT, 10, 11), iconic_taxon_name="Plantae"),
    Taxon(13, "Rosa caninaeformis", "species", (*PLANT, 10, 11), iconic_taxon_name="Plantae"),
    Taxon(20, "Morus", "genus", (*PLANT, 30), iconic_taxon_name="Plantae"),
    Taxon(21, "Morus", "genus", (*PLANT, 31), iconic_taxon_name="Plantae"),  # a plant homonym
    Taxon(22, "Morus alba", "species", (*PLANT, 30, 20), iconic_taxon_name="Plantae"),
    Taxon(30, "Moraceae", "family", PLANT, iconic_taxon_name="Plantae"),
    Taxon(40, "Bellis", "genus", (1, 47158), iconic_taxon_name="Insecta"),  # homonym outside plants
    Taxon(41, "Bellis", "genus", (*PLANT, 42), iconic_taxon_name="Plantae"),
    Taxon(42, "Asteraceae", "family", PLANT, iconic_taxon_name="Plantae"),
    Taxon(43, "Bellis perennis", "species", (*PLANT, 42, 41), iconic_taxon_name="Plantae"),
]


def _labels() -> list[Label]:
    return [
        Label(0, None, "Rosa canina", "species", None, "Rosa", None, "Rosaceae"),
        Label(1, None, "Bellis perennis", "species", None, "Bellis", None, "Asteraceae"),
        Label(2, None, "Morus alba", "species", None, "Morus", None, "Moraceae"),
        Label(3, None, "Rosa nonexistens", "species", None, "Rosa", None, "Rosaceae"),
        Label(4, None, "rosa canina", "species", None, "Rosa", None, "Rosaceae"),  # a second label, same taxon
        Label(5, 99, "Kept id", "species", None, "", None, ""),
    ]


def test_resolve_labels_fills_exact_matches_and_reports_the_rest() -> None:
    platform = FakeTaxa(TAXA)
    result = resolve_labels(_labels(), platform)
    by = {lab.index: lab for lab in result.labels}
    assert (by[1].taxon_id, by[1].genus_taxon_id, by[1].family_taxon_id) == (43, 41, 42)  # the plant Bellis
    assert (by[2].taxon_id, by[2].genus_taxon_id, by[2].family_taxon_id) == (22, None, 30)  # Morus ambiguous
    assert by[3].taxon_id is None and by[3].genus_taxon_id == 11  # not "Rosa caninaeformis" or a guess
    assert by[0].taxon_id is None and by[4].taxon_id is None  # two labels on taxon 12: neither gets it
    assert by[0].genus_taxon_id == 11 and by[0].family_taxon_id == 10
    assert by[5].taxon_id == 99  # ids already there are kept
    assert result.unmapped == ["Rosa nonexistens (species): no taxon with exactly this name"]
    assert any(line.startswith("Morus (genus): 2 taxa") for line in result.ambiguous)
    assert any("taxon 12" in line and "Rosa canina" in line for line in result.ambiguous)
    assert not result.ok
    assert len([c for c in platform.calls if c == ("Rosa", "genus")]) == 1  # each name searched once


def test_labels_resolve_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.cli.dataset as cli_dataset

    monkeypatch.setattr(cli_dataset, "_platform", lambda state, **kw: FakeTaxa(TAXA))
    path, out = tmp_path / "labels.csv", tmp_path / "resolved.csv"
    write_labels(path, _labels()[:2])
    result = _invoke(["labels", "resolve", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [(lab.taxon_id, lab.genus_taxon_id, lab.family_taxon_id) for lab in read_labels(out)] == [
        (12, 11, 10), (43, 41, 42)]
    write_labels(path, _labels())
    result = _invoke(["labels", "resolve", str(path)])
    assert result.exit_code == 1
    assert "unmapped: Rosa nonexistens" in result.output and "ambiguous: Morus (genus)" in result.output
    assert read_labels(path)[1].taxon_id == 43  # written in place, the resolved ones filled
    again = _invoke(["labels", "resolve", str(out), "--overwrite"])  # every id looked up and written again
    assert again.exit_code == 0, again.output
    assert "2 labels, 6 ids filled (0 changed)" in again.output


# ---------------------------------------------------------------- from-platform


class WorldPlatform:
    """The Platform reads over a synthetic World (research-grade plants only, pages of `per_page`)."""

    def __init__(self, world: World, per_page: int = 7, fail_after_pages: int | None = None) -> None:
        self.world, self.per_page, self.fail_after_pages = world, per_page, fail_after_pages
        self.pages_served = 0

    def _taxon(self, tid: int) -> Taxon:
        t = self.world.taxa[tid]
        return Taxon(t.id, t.name, t.rank, tuple(self.world.ancestor_ids(tid)), iconic_taxon_name=t.iconic_taxon_name)

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]:
        obs = [o for o in sorted(self.world.observations.values(), key=lambda o: o.id)
               if o.id > cursor and o.quality_grade == "research"
               and self.world.iconic_taxon_name(o.taxon_id) == "Plantae"]
        for start in range(0, len(obs), self.per_page):
            if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
                raise ConnectionError("network down")
            chunk = obs[start:start + self.per_page]
            self.pages_served += 1
            yield ObservationPage([self._observation(o) for o in chunk], [], chunk[-1].id)

    def _observation(self, o) -> Observation:  # type: ignore[no-untyped-def]
        assert o.taxon_id is not None
        photos = tuple(Photo(pid, f"http://photos.test/photos/{pid}/square.jpg", i)
                       for i, pid in enumerate(o.photo_ids))
        return Observation(o.id, User(o.user_id, "u"), photos, taxon=self._taxon(o.taxon_id),
                           iconic_taxon_name="Plantae", quality_grade="research")

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        return self._taxon(taxon_id) if taxon_id in self.world.taxa else None


class Boom(Exception):
    """An interruption the collector must not swallow."""


class Fetcher:
    def __init__(self, world: World, fail_at: int | None = None, broken: Sequence[int] = ()) -> None:
        self.world, self.fail_at, self.broken = world, fail_at, set(broken)
        self.fetched: list[int] = []
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        if self.fail_at is not None and len(self.fetched) == self.fail_at:
            raise Boom("interrupted")
        self.urls.append(url)
        pid = int(url.split("/")[-2])
        if pid in self.broken:
            raise OSError("connection reset")
        self.fetched.append(pid)
        return self.world.photos[pid]


@pytest.fixture(scope="module")
def world() -> World:
    w, _ = make_world(WorldSpec(families=2, genera_per_family=2, species_per_genus=2, observations=80,
                                photo_size=(40, 30), seed=5))
    return w


def _expected_photos(world: World, opts: CollectOptions) -> dict[int, int]:
    """photo id -> species, for the species the options select."""
    research = [o for o in world.observations.values()
                if o.quality_grade == "research" and world.iconic_taxon_name(o.taxon_id) == "Plantae"]
    counts = Counter[int]()
    for o in research:
        counts[o.taxon_id or 0] += len(o.photo_ids)
    names = {t: world.taxa[t].name for t in counts}
    keep = sorted((t for t, n in counts.items() if n >= opts.min_photos), key=lambda t: (-counts[t], names[t]))
    keep = keep[: opts.max_species]
    return {p: o.taxon_id or 0 for o in research if o.taxon_id in keep for p in o.photo_ids}


def test_from_platform_resumes_and_fetches_each_photo_once(world: World, tmp_path: Path) -> None:
    opts = CollectOptions(min_photos=3, max_species=3, test_fraction=0.3, seed=1, photo_size="medium",
                          filters=(("place_id", PLACE_ID),))
    expected = _expected_photos(world, opts)
    assert len(expected) > 10 and len(set(expected.values())) == 3
    out = tmp_path / "ds"
    with pytest.raises(ConnectionError):  # the listing breaks off after two pages
        collect_from_platform(WorldPlatform(world, fail_after_pages=2), out, opts, fetch=Fetcher(world),
                              progress=False)
    first = Fetcher(world, fail_at=6)
    with pytest.raises(Boom):  # then the downloads break off after six photos
        collect_from_platform(WorldPlatform(world), out, opts, fetch=first, progress=False)
    assert len(first.fetched) == 6
    second = Fetcher(world, broken=[first.fetched[0] + 10_000])  # nothing broken that exists
    summary = collect_from_platform(WorldPlatform(world), out, opts, fetch=second, progress=False)
    fetched = Counter(first.fetched + second.fetched)
    assert set(fetched) == set(expected) and max(fetched.values()) == 1  # every photo, once
    assert all(u.endswith("/medium.jpg") for u in first.urls + second.urls)
    assert sorted(int(p.stem) for p in (out / "photos").glob("*.jpg")) == sorted(expected)
    rows = _rows(out / "train.csv") + _rows(out / "test.csv")
    assert sorted(int(Path(r["path"]).stem) for r in rows) == sorted(expected)
    labels = {lab.name: lab for lab in read_labels(out / "labels.csv")}
    for r in rows:  # observation ids are the platform's, labels carry the taxon ids
        obs = world.observations[int(r["observation_id"])]
        assert int(Path(r["path"]).stem) in obs.photo_ids
        assert labels[r["label"]].taxon_id == obs.taxon_id == expected[int(Path(r["path"]).stem)]
        genus = world.taxa[world.taxa[obs.taxon_id].parent_id]  # type: ignore[index]
        assert (labels[r["label"]].genus_taxon_id, labels[r["label"]].genus) == (genus.id, genus.name)
        assert (out / r["path"]).is_file()
    assert {r["observation_id"] for r in _rows(out / "test.csv")}.isdisjoint(
        {r["observation_id"] for r in _rows(out / "train.csv")})
    assert summary.species == 3 and summary.test_photos > 0 and not summary.skipped


def test_from_platform_retries_failed_photos_next_run(world: World, tmp_path: Path) -> None:
    opts = CollectOptions(min_photos=3, max_species=2, filters=(("project_id", 1),))
    expected = _expected_photos(world, opts)
    bad = sorted(expected)[0]
    summary = collect_from_platform(WorldPlatform(world), tmp_path, opts, fetch=Fetcher(world, broken=[bad]),
                                    progress=False)
    assert any("1 photo(s) failed" in line for line in summary.skipped)
    assert not (tmp_path / "photos" / f"{bad}.jpg").exists()
    retry = Fetcher(world)
    collect_from_platform(WorldPlatform(world), tmp_path, opts, fetch=retry, progress=False)
    assert retry.fetched == [bad]
    other = CollectOptions(min_photos=3, max_species=2, filters=(("project_id", 2),))
    with pytest.raises(Exception, match="holds a dataset for"):
        collect_from_platform(WorldPlatform(world), tmp_path, other, fetch=Fetcher(world), progress=False)


class FieldPlatform(WorldPlatform):
    """Observations carrying a 'Habit photo' field: even ids all photos, ids divisible by 3 the first."""

    def _observation(self, o) -> Observation:  # type: ignore[no-untyped-def]
        obs = super()._observation(o)
        value = "yes" if o.id % 2 == 0 else "1" if o.id % 3 == 0 else "no"
        return replace(obs, field_values={"Habit photo": value})


def test_habit_photos_tagged_from_an_observation_field(world: World, tmp_path: Path) -> None:
    from bot.training.collect import habit_photo_ids

    photos = tuple(Photo(i, f"http://x/{i}/square.jpg", i) for i in range(3))
    obs = Observation(1, User(1, "u"), photos, field_values={"habit": "1, 3"})
    assert habit_photo_ids(obs, "Habit") == [0, 2] and habit_photo_ids(obs, None) == []
    assert habit_photo_ids(replace(obs, field_values={"habit": "Yes"}), "habit") == [0, 1, 2]
    assert habit_photo_ids(replace(obs, field_values={"habit": "leaf"}), "habit") == []
    opts = CollectOptions(min_photos=3, max_species=3, filters=(("place_id", PLACE_ID),),
                          habit=HabitRule("habit photo"))
    summary = collect_from_platform(FieldPlatform(world), tmp_path, opts, fetch=Fetcher(world), progress=False)
    rows = _rows(tmp_path / "train.csv") + _rows(tmp_path / "test.csv")
    expected = set()
    for r in rows:
        oid, pid = int(r["observation_id"]), int(Path(r["path"]).stem)
        if oid % 2 == 0 or (oid % 3 == 0 and world.observations[oid].photo_ids[0] == pid):
            expected.add(pid)
    assert {int(Path(r["path"]).stem) for r in rows if r["tag"] == "habit"} == expected
    assert summary.habit_photos == len(expected) > 0


def test_habit_photos_tagged_from_an_annotation() -> None:
    from bot.training.collect import habit_photo_ids

    photos = tuple(Photo(i, f"http://x/{i}/square.jpg", i) for i in range(3))
    obs = Observation(1, User(1, "u"), photos, field_values={"habit": "2"},
                      annotations=(Annotation(12, 13), Annotation(36, 38)))
    assert habit_photo_ids(obs, None, (12, 13)) == [0, 1, 2]  # the annotation tags every photo
    assert habit_photo_ids(obs, None, (12, 14)) == [] and habit_photo_ids(obs, None, (36, 13)) == []
    assert habit_photo_ids(obs, "habit", (12, 14)) == [1]  # no annotation match: the field still counts
    voted_down = replace(obs, annotations=(Annotation(12, 13, vote_score=-1),))
    assert habit_photo_ids(voted_down, None, (12, 13)) == []  # the community disagreed


HABIT_FIELD, HABIT_ANNOTATION = "Habit photo", (12, 13)


def _habit_world(world: World) -> tuple[World, set[int], set[int]]:
    """A copy whose observations carry the habit field (ids divisible by 3) or annotation (by 5; one of them
    voted down); returns it with the photo ids each should tag."""
    import copy

    from bot.sim.model import SimAnnotation

    w = copy.deepcopy(world)
    by_field: set[int] = set()
    by_annotation: set[int] = set()
    for o in w.observations.values():
        if o.id % 3 == 0:
            o.ofvs[HABIT_FIELD] = "yes"
            by_field |= set(o.photo_ids)
        if o.id % 5 == 0:
            score = -1 if o.id % 25 == 0 else 1
            o.annotations.append(SimAnnotation(*HABIT_ANNOTATION, user_id=o.user_id, vote_score=score))
            by_annotation |= set(o.photo_ids) if score >= 0 else set()
        o.annotations.append(SimAnnotation(12, 14, user_id=o.user_id))  # another value of the attribute
    return w, by_field, by_annotation


@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_from_platform_tags_habit_photos_from_the_configured_field_and_annotation(
        world: World, tmp_path: Path, flavor: str) -> None:
    from bot.sim.server import SimServer

    habit_world, by_field, by_annotation = _habit_world(world)
    with SimServer(habit_world) as sim:
        config = tmp_path / "config.toml"
        config.write_text(f'[platform]\nflavor = "{flavor}"\napi_url = "{sim.api_url}"\nsite_url = "{sim.url}"\n'
                          f'requests_per_second = 50.0\nrequests_per_minute = 3000\n'
                          f'ratelimit_path = "{tmp_path / "rl.sqlite3"}"\nextra_photo_hosts = ["127.0.0.1"]\n'
                          f'[dataset]\nhabit_field = "{HABIT_FIELD}"\nhabit_annotation_attribute_id = 12\n'
                          f'habit_annotation_value_id = 13\n')
        args = ["--config", str(config), "dataset", "from-platform", "--place-id", str(PLACE_ID),
                "--min-photos", "3", "--max-species", "3", "--no-progress", "--out", str(tmp_path / "ds")]
        first = _invoke(args)
        assert first.exit_code == 0, first.output
        rows = _rows(tmp_path / "ds" / "train.csv") + _rows(tmp_path / "ds" / "test.csv")
        kept = {int(Path(r["path"]).stem) for r in rows}
        tagged = {int(Path(r["path"]).stem) for r in rows if r["tag"] == "habit"}
        # v1 serves annotations; a Rails fork's JSON has none, so there only the field tags photos
        expected = kept & (by_field | by_annotation if flavor == "inat-v1" else by_field)
        assert tagged == expected and kept & by_field and kept & by_annotation - by_field
        assert f"{len(expected)} photos tagged habit (field '{HABIT_FIELD}' or annotation 12=13)" in first.output
        assert ("carries no annotations" in first.output) == (flavor == "legacy")
        listed = len(sim.requests)
        # the command's options override the config; the folder's listing is reused, the rule applied anew
        again = _invoke([*args, "--habit-field", "no such field", "--habit-annotation", "12:13"])
        assert again.exit_code == 0, again.output
        assert not [r for r in sim.requests[listed:] if r.path.endswith("observations.json")
                    or r.path == "/v1/observations"]
    rows = _rows(tmp_path / "ds" / "train.csv") + _rows(tmp_path / "ds" / "test.csv")
    tagged = {int(Path(r["path"]).stem) for r in rows if r["tag"] == "habit"}
    assert tagged == (kept & by_annotation if flavor == "inat-v1" else set())
    assert f"{len(tagged)} photos tagged habit (field 'no such field' or annotation 12=13)" in again.output
    bad = _invoke([*args, "--habit-annotation", "twelve"])
    assert bad.exit_code == 2 and "ATTRIBUTE:VALUE" in bad.output


class NoTaxaPlatform(WorldPlatform):
    """A platform whose taxon look-ups fail (the legacy flavor's state before its taxon routes)."""

    def get_taxon(self, taxon_id: int) -> Taxon | None:
        return None


def test_failed_taxon_lookups_are_not_cached_and_zero_species_is_an_error(world: World, tmp_path: Path) -> None:
    import json

    from bot.errors import PlantBotError

    opts = CollectOptions(min_photos=3, max_species=3, filters=(("place_id", PLACE_ID),))
    fetch = Fetcher(world)
    with pytest.raises(PlantBotError, match="0 species: all 3 candidates were left out") as err:
        collect_from_platform(NoTaxaPlatform(world), tmp_path, opts, fetch=fetch, progress=False)
    assert err.value.exit_code == 1 and fetch.fetched == []  # nothing downloaded for nothing
    assert json.loads((tmp_path / "taxa.json").read_text(encoding="utf-8")) == {}  # no failure kept
    summary = collect_from_platform(WorldPlatform(world), tmp_path, opts, fetch=fetch, progress=False)
    assert summary.species == 3 and not summary.skipped
    with pytest.raises(PlantBotError, match="has 1000 photos"):
        collect_from_platform(WorldPlatform(world), tmp_path / "other", CollectOptions(
            min_photos=1000, filters=(("place_id", PLACE_ID),)), fetch=fetch, progress=False)


@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_from_platform_command_against_the_simulator(world: World, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    from bot.sim.server import SimServer
    from bot.training import collect

    real = collect.photo_fetcher
    calls = {"n": 0}

    def flaky_fetcher(*args, **kwargs):  # type: ignore[no-untyped-def]
        fetch = real(*args, **kwargs)

        def wrapped(url: str) -> bytes:
            calls["n"] += 1
            if calls["n"] == 4:
                raise Boom("interrupted")
            return fetch(url)
        return wrapped

    monkeypatch.setattr(collect, "photo_fetcher", flaky_fetcher)
    with SimServer(world) as sim:
        config = tmp_path / "config.toml"
        config.write_text(f'[platform]\nflavor = "{flavor}"\napi_url = "{sim.api_url}"\nsite_url = "{sim.url}"\n'
                          f'requests_per_second = 50.0\nrequests_per_minute = 3000\n'
                          f'ratelimit_path = "{tmp_path / "rl.sqlite3"}"\nextra_photo_hosts = ["127.0.0.1"]\n')
        args = ["--config", str(config), "dataset", "from-platform", "--place-id", str(PLACE_ID),
                "--min-photos", "3", "--max-species", "3", "--no-progress", "--out", str(tmp_path / "ds")]
        first = _invoke(args)
        assert isinstance(first.exception, Boom)
        second = _invoke(args)
        assert second.exit_code == 0, second.output
        photo_gets = Counter(r.path for r in sim.requests if "/photos/" in r.path)
    expected = _expected_photos(world, CollectOptions(min_photos=3, max_species=3))
    assert len(photo_gets) == len(expected) and max(photo_gets.values()) == 1
    rows = _rows(tmp_path / "ds" / "train.csv") + _rows(tmp_path / "ds" / "test.csv")
    assert sorted(int(Path(r["path"]).stem) for r in rows) == sorted(expected)
    assert "3 species" in second.output and "left out" not in second.output
    labels = read_labels(tmp_path / "ds" / "labels.csv")  # genus and family resolved on either flavor
    for lab in labels:
        genus = world.taxa[world.taxa[lab.taxon_id].parent_id]  # type: ignore[index]
        assert (lab.genus_taxon_id, lab.genus) == (genus.id, genus.name)
        assert lab.family == world.taxa[genus.parent_id].name  # type: ignore[index]
