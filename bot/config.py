"""Settings from a TOML file plus the environment, validated before anything runs.

Every mistake is reported as one line naming the file, the section and the key, because an admin
editing a config on a server wants to know exactly which line to fix.  Secrets never live here:
they are read from the environment only (see `Secrets`).
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import UsageError

PRESETS: dict[str, dict[str, Any]] = {
    "inaturalist": {
        "flavor": "inat-v1",
        "api_url": "https://api.inaturalist.org/v1",
        "site_url": "https://www.inaturalist.org",
        "photo_hosts": ["static.inaturalist.org", "inaturalist-open-data.s3.amazonaws.com"],
    },
    "natusfera": {
        "flavor": "inat-v1",
        "api_url": "https://api.inaturalist.org/v1",
        "site_url": "https://spain.inaturalist.org",
        "site_id": 13,
        "language": "es",
        "photo_hosts": ["static.inaturalist.org", "inaturalist-open-data.s3.amazonaws.com"],
    },
    "legacy": {"flavor": "legacy"},
}
INAT_NETWORK_API_HOSTS = ("api.inaturalist.org", "www.inaturalist.org", "inaturalist.org")


class ConfigError(UsageError):
    """A configuration problem, already phrased as one line for the user."""


@dataclass
class PlatformConfig:
    preset: str | None = None  # "inaturalist", "natusfera" or "legacy": fills the keys below
    flavor: str = "inat-v1"  # "inat-v1" or "legacy"
    api_url: str = "https://api.inaturalist.org/v1"
    site_url: str = "https://www.inaturalist.org"
    user_agent: str = "PlantBot"
    contact: str = ""  # an e-mail or URL added to the User-Agent
    site_id: int | None = None
    place_id: int | None = None
    project_id: int | None = None
    quality_grade: str | None = "needs_id"  # "needs_id", "research", "casual"; "any" (None): all grades
    start: str | int = "now"  # where a new cursor starts: "now", a date "YYYY-MM-DD" or an observation id
    photo_hosts: list[str] = field(default_factory=list)
    extra_photo_hosts: list[str] = field(default_factory=list)
    per_page: int = 200
    max_id_jump: int = 10_000_000  # a new id this far past the previous one is rejected as suspicious (0: off)
    requests_per_second: float = 1.0
    requests_per_minute: int = 60
    requests_per_day: int = 9000
    ratelimit_path: str = ""  # shared bucket file; empty: the user's cache directory
    timeout_seconds: float = 30.0  # per request: the whole answer, not each socket read
    max_response_bytes: int = 50_000_000  # a larger answer is refused (a 200-observation page is ~1 MB)
    max_retries: int = 4


@dataclass
class PhotosConfig:
    size: str = "medium"  # square, small, medium, large, original
    max_bytes: int = 8_000_000
    max_pixels: int = 40_000_000
    timeout_seconds: float = 20.0
    parallel: int = 8
    max_photos_per_observation: int = 20
    media_bytes_per_hour: int = 5_000_000_000
    media_bytes_per_day: int = 24_000_000_000


@dataclass
class ModelConfig:
    path: str = "model"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"
    batch_size: int = 64
    threads: int = 0  # torch intra-op threads; 0 picks from the core count
    workers: int = 0  # decode/preprocess threads; 0 picks from the core count
    dtype: str = "auto"  # auto (bfloat16 on a CPU with native bf16 / a GPU), float32, bfloat16, float16
    tencrop: bool = False


CUTOFF_SOURCES = ("config", "bundle")
FALLBACK_RULES = ("summed", "common-ancestor")


@dataclass
class DecisionConfig:
    """The decision rule's settings; `decide` reads nothing else (per-rank cutoffs fall back to `cutoff`)."""

    cutoff: float = 0.30
    species_cutoff: float | None = None
    genus_cutoff: float | None = None
    family_cutoff: float | None = None
    cutoffs: str = "config"  # "config": the numbers here; "bundle": the ones `plantbot calibrate` stored
    target_precision: float = 0.9  # what `calibrate` and `cutoffs suggest` aim the per-rank cutoffs at
    min_decided: int = 30  # fewest decided held-out observations per rank for calibrate to set a cutoff
    live_min_outcomes: int = 50  # fewest decided live outcomes per rank before the audit suggests a cutoff
    fallback: str = "summed"  # "summed" (genus/family sums) or "common-ancestor" (iNaturalist's rule)
    ancestor_threshold: float = 0.78  # common-ancestor: the rolled-up score the proposed taxon needs
    fallback_ranks: list[str] = field(default_factory=lambda: ["genus", "family"])
    skip_captive: bool = True
    top_k: int = 5
    flora: str = "off"  # "off", "place" (taxa recorded in the place, cached) or "file" (a CSV of taxon ids)
    flora_weight: float = 0.0  # multiplies species outside the flora; 0 restricts, (0, 1) a soft prior
    flora_renormalise: bool = False  # rescale after weighting (only for a complete list)
    flora_file: str = ""  # flora = "file": CSV with a taxon_id column (optional count)
    flora_place_id: int | None = None  # flora = "place": default [platform] place_id
    flora_place_name: str = ""  # shown as "not recorded in <name>"; default "place <id>" or the file's name
    flora_max_requests: int = 20  # per refresh (500 taxa a page); a larger place fails and keeps the old list

    def cutoff_for(self, rank: str) -> float:
        """The cutoff of one rank: its own key when set, else the shared `cutoff`."""
        own = {"species": self.species_cutoff, "genus": self.genus_cutoff, "family": self.family_cutoff}.get(rank)
        return self.cutoff if own is None else own


@dataclass
class PostingConfig:
    mode: str = "review"  # "dry-run", "review" or "auto"
    allow_unreviewed: bool = False
    i_have_written_permission: bool = False
    language: str = "en"  # "en" or "es"
    templates_dir: str = ""  # a folder overriding the shipped texts
    opt_out_users: list[str] = field(default_factory=list)
    opt_out_tags: list[str] = field(default_factory=list)
    opt_out_field: str = ""  # an observation field whose value "no"/"false" opts out
    account_login: str = ""  # the bot account's login (auto mode, skip rule)


@dataclass
class ReviewConfig:
    moderators: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    oauth_client_id: str = ""  # secret in PLANTBOT_OAUTH_CLIENT_SECRET when the app has one
    redirect_url: str = ""  # empty: http://{host}:{port}/auth/callback
    page_size: int = 20
    context_max_age_minutes: int = 10  # a card's observation context older than this is re-read on opening
    map_tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"  # empty: no tiles, point only
    map_attribution: str = "© OpenStreetMap contributors"


@dataclass
class DatasetConfig:
    """`plantbot dataset from-platform`: which photos to tag `habit` (the command's options override these)."""

    habit_field: str = ""  # an observation field: yes/all tags every photo, "1,3" those positions
    habit_annotation_attribute_id: int | None = None  # with the value id: an annotation that tags every photo
    habit_annotation_value_id: int | None = None


@dataclass
class StoreConfig:
    database: str = "plantbot.sqlite3"


@dataclass
class ScheduleConfig:
    interval_seconds: int = 600
    post_interval_seconds: int = 60
    audit_interval_seconds: int = 86400
    token_refresh_seconds: int = 3600
    flora_refresh_seconds: int = 604800  # [decision] flora = "place": weekly


@dataclass
class Config:
    platform: PlatformConfig = field(default_factory=PlatformConfig)
    photos: PhotosConfig = field(default_factory=PhotosConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    posting: PostingConfig = field(default_factory=PostingConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    source: Path | None = None  # the file it came from, for messages and relative paths

    def resolve_path(self, value: str) -> Path:
        """Paths in a config are relative to the config file, not to the working directory."""
        p = Path(value).expanduser()
        if p.is_absolute() or self.source is None:
            return p
        return self.source.parent / p

    @property
    def database_path(self) -> Path:
        return self.resolve_path(self.store.database)

    @property
    def flora_place_id(self) -> int | None:
        return self.decision.flora_place_id if self.decision.flora_place_id is not None else self.platform.place_id

    @property
    def model_path(self) -> Path:
        return self.resolve_path(self.model.path)

    @property
    def platform_hosts(self) -> list[str]:
        """The platform's own hosts (`host` or `host:port`): the only ones its observation links may name.

        An iNaturalist network site also links to www.inaturalist.org, which serves every network site.
        """
        own = [_host_entry(u) for u in (self.platform.site_url, self.platform.api_url)]
        if any((urlsplit(u).hostname or "").endswith("inaturalist.org")
               for u in (self.platform.site_url, self.platform.api_url)):
            own += list(INAT_NETWORK_API_HOSTS)
        return list(dict.fromkeys(h for h in own if h))

    @property
    def allowed_photo_hosts(self) -> list[str]:
        """The preset's photo hosts, the configured extras, and the platform's own API and site hosts."""
        own = [_host_entry(u) for u in (self.platform.api_url, self.platform.site_url)]
        hosts = [*self.platform.photo_hosts, *self.platform.extra_photo_hosts, *own]
        return list(dict.fromkeys(h for h in hosts if h))


def _host_entry(url: str) -> str:
    """`host`, or `host:port` when the URL names a port (an allowed-host entry, see bot.urls)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if not host:
        return ""
    name = f"[{host}]" if ":" in host else host
    return f"{name}:{port}" if port else name


@dataclass(frozen=True)
class Secrets:
    """Credentials, from the environment only; `repr` never shows them."""

    api_token: str | None = field(default=None, repr=False)
    app_id: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    oauth_client_secret: str | None = field(default=None, repr=False)
    web_secret_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: typing.Mapping[str, str] | None = None) -> Secrets:
        e = os.environ if env is None else env
        return cls(
            api_token=e.get("PLANTBOT_API_TOKEN") or None,
            app_id=e.get("INAT_APP_ID") or None,
            app_secret=e.get("INAT_APP_SECRET") or None,
            username=e.get("INAT_USERNAME") or None,
            password=e.get("INAT_PASSWORD") or None,
            oauth_client_secret=e.get("PLANTBOT_OAUTH_CLIENT_SECRET") or None,
            web_secret_key=e.get("PLANTBOT_SECRET_KEY") or None,
        )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; None means built-in defaults (or $PLANTBOT_CONFIG)."""
    if path is None:
        env_path = os.environ.get("PLANTBOT_CONFIG")
        if not env_path:
            return validate(Config())
        path = env_path
    src = Path(path)
    try:
        raw = tomllib.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{src}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{src}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read: {exc.strerror}") from None
    return config_from_dict(raw, source=src)


def config_from_dict(raw: dict[str, Any], source: Path | None = None) -> Config:
    where = str(source) if source else "<config>"
    cfg = Config(source=source.resolve() if source else None)
    platform_raw = dict(raw.get("platform", {})) if isinstance(raw.get("platform"), dict) else {}
    preset = platform_raw.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"{where}: [platform] preset: unknown preset {preset!r} "
                              f"(choose from {', '.join(PRESETS)})")
        defaults = {k: v for k, v in PRESETS[preset].items() if k != "language"}
        raw = {**raw, "platform": {**defaults, **platform_raw}}
        if "language" in PRESETS[preset]:
            posting = dict(raw.get("posting", {}))
            posting.setdefault("language", PRESETS[preset]["language"])
            raw["posting"] = posting
    for key, value in raw.items():
        section = next((f for f in fields(Config) if f.name == key and f.name != "source"), None)
        if section is None:
            raise ConfigError(f"{where}: unknown section [{key}]")
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{key}] must be a table")
        _fill(getattr(cfg, key), value, f"{where}: [{key}]")
    return validate(cfg, where)


def _fill(obj: Any, values: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where} {key}: unknown key")
        setattr(obj, key, _coerce(value, hints[key], f"{where} {key}"))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        fits = next((a for a in inner if isinstance(value, a) and not isinstance(value, bool)), inner[0])
        return _coerce(value, fits, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_coerce(v, args[0], where) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint in (str, float) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected a {'string' if hint is str else 'number'}, got {value!r}")
    return value


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{where} {message}")


def validate(cfg: Config, where: str = "<config>") -> Config:
    """Checks that need more than one key's type."""
    p, ph, m, d, po = cfg.platform, cfg.photos, cfg.model, cfg.decision, cfg.posting
    _check(p.flavor in ("inat-v1", "legacy"), where, f"[platform] flavor: {p.flavor!r} is not inat-v1 or legacy")
    _check(p.quality_grade in (None, "any", "needs_id", "research", "casual"), where,
           f"[platform] quality_grade: {p.quality_grade!r} is not needs_id, research, casual or any")
    if p.quality_grade == "any":
        p.quality_grade = None  # no filter; the same cursor as a config from before the key had a default
    try:
        start_point(p.start)
    except ValueError as exc:
        raise ConfigError(f"{where} [platform] start: {exc}") from None
    _check(1 <= p.per_page <= 200, where, "[platform] per_page: must be between 1 and 200")
    _check(p.max_response_bytes > 0, where, "[platform] max_response_bytes: must be > 0")
    _check(p.max_id_jump >= 0, where, "[platform] max_id_jump: must be >= 0 (0 turns the check off)")
    _check(p.requests_per_second > 0, where, "[platform] requests_per_second: must be > 0")
    _check(ph.size in ("square", "small", "medium", "large", "original"), where,
           f"[photos] size: {ph.size!r} is not square, small, medium, large or original")
    _check(ph.max_bytes > 0 and ph.max_pixels > 0 and ph.parallel > 0, where, "[photos] limits must be > 0")
    _check(m.batch_size > 0, where, "[model] batch_size: must be > 0")
    _check(m.dtype in ("auto", "float32", "float16", "bfloat16"), where,
           f"[model] dtype: {m.dtype!r} is not auto, float32, bfloat16 or float16")
    _check(m.device == "auto" or m.device == "cpu" or m.device.startswith(("cuda", "mps")), where,
           f"[model] device: {m.device!r} is not auto, cpu or cuda[:N]")
    for key in ("cutoff", "species_cutoff", "genus_cutoff", "family_cutoff", "ancestor_threshold"):
        value = getattr(d, key)
        _check(value is None or 0.0 < value <= 1.0, where, f"[decision] {key}: {value} is not in (0, 1]")
    _check(0.0 < d.target_precision < 1.0, where,
           f"[decision] target_precision: {d.target_precision} is not in (0, 1)")
    _check(d.cutoffs in CUTOFF_SOURCES, where, f"[decision] cutoffs: {d.cutoffs!r} is not config or bundle")
    _check(d.fallback in FALLBACK_RULES, where,
           f"[decision] fallback: {d.fallback!r} is not summed or common-ancestor")
    _check(d.min_decided >= 1 and d.live_min_outcomes >= 1, where,
           "[decision] min_decided and live_min_outcomes: must be >= 1")
    _check(all(r in ("genus", "family") for r in d.fallback_ranks), where,
           "[decision] fallback_ranks: only \"genus\" and \"family\" are allowed")
    _check(d.top_k >= 1, where, "[decision] top_k: must be >= 1")
    _check_flora(cfg, where)
    _check(po.mode in ("dry-run", "review", "auto"), where,
           f"[posting] mode: {po.mode!r} is not dry-run, review or auto")
    _check(po.language in ("en", "es"), where, f"[posting] language: {po.language!r} is not en or es")
    _check(cfg.review.context_max_age_minutes >= 0, where, "[review] context_max_age_minutes: must be >= 0")
    _check(not cfg.review.map_tiles_url or cfg.review.map_tiles_url.startswith(("https://", "http://")), where,
           "[review] map_tiles_url: must be an http(s) URL with {z}/{x}/{y}, or empty")
    _check(cfg.schedule.interval_seconds > 0, where, "[schedule] interval_seconds: must be > 0")
    ds = cfg.dataset
    _check((ds.habit_annotation_attribute_id is None) == (ds.habit_annotation_value_id is None), where,
           "[dataset] habit_annotation_attribute_id and habit_annotation_value_id: give both or neither")
    _check(all(i is None or i >= 1 for i in (ds.habit_annotation_attribute_id, ds.habit_annotation_value_id)), where,
           "[dataset] habit_annotation_attribute_id and habit_annotation_value_id: ids are >= 1")
    return cfg


def user_agent(pcfg: PlatformConfig) -> str:
    """`PlantBot/<version> (+contact)`: iNaturalist asks API clients to identify themselves (API and photos)."""
    from bot import __version__

    name = pcfg.user_agent.strip() or "PlantBot"
    base = name if "/" in name else f"{name}/{__version__}"
    return f"{base} (+{pcfg.contact.strip()})" if pcfg.contact.strip() else base


def _check_flora(cfg: Config, where: str) -> None:
    d = cfg.decision
    _check(d.flora in ("off", "place", "file"), where, f"[decision] flora: {d.flora!r} is not off, place or file")
    _check(0.0 <= d.flora_weight <= 1.0, where, f"[decision] flora_weight: {d.flora_weight} is not in [0, 1]")
    _check(d.flora_max_requests >= 1, where, "[decision] flora_max_requests: must be >= 1")
    _check(cfg.schedule.flora_refresh_seconds > 0, where, "[schedule] flora_refresh_seconds: must be > 0")
    if d.flora == "file":
        _check(bool(d.flora_file), where, "[decision] flora_file: required when flora = \"file\"")
    if d.flora == "place":
        _check(cfg.platform.flavor == "inat-v1", where, "[decision] flora: \"place\" needs the iNaturalist v1 "
               "API (species_counts); a legacy site has no equivalent, use flora = \"file\"")
        _check(cfg.flora_place_id is not None, where,
               "[decision] flora_place_id: flora = \"place\" needs a place ([platform] place_id or this key)")


@dataclass(frozen=True)
class StartPoint:
    """Where polling starts on a database with no cursor yet: the newest observation, a date or an id."""

    kind: str  # "now", "date" or "id"
    on: date | None = None
    after_id: int | None = None

    def __str__(self) -> str:
        if self.kind == "date":
            return f"the first observation created on or after {self.on}"
        if self.kind == "id":
            return f"after observation id {self.after_id}"
        return "the newest observation (now)"


def start_point(value: str | int) -> StartPoint:
    """Reads `[platform] start`: "now", "YYYY-MM-DD", or an id (0: the platform's first observation)."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if number < 0:
            raise ValueError(f"{value!r} is a negative id")
        return StartPoint("id", after_id=number)
    text = str(value).strip().lower()
    if text == "now":
        return StartPoint("now")
    try:
        return StartPoint("date", on=date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{value!r} is not \"now\", a date (YYYY-MM-DD) or an observation id") from None


def check_model_path(cfg: Config) -> Path:
    """A missing model is a config error, reported against [model] path."""
    path = cfg.model_path
    where = str(cfg.source) if cfg.source else "<config>"
    if not path.exists():
        raise ConfigError(f"{where}: [model] path: {path} does not exist")
    return path


def as_dict(obj: Any) -> Any:
    """The effective settings, for `plantbot config show` (never includes secrets)."""
    if is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in fields(obj) if f.name != "source"}
    return obj
