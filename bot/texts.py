"""The texts PlantBot posts: Jinja2 templates that say a model helped, which one, how sure it was,
how many photos it saw and whether a person reviewed the suggestion (English and Spanish shipped,
`[posting] templates_dir` overrides them).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.config import Config
from bot.errors import UsageError
from bot.store.values import DecisionValue

SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "post_templates"

__all__ = ["SHIPPED_TEMPLATES", "check_templates", "render_body", "render_text"]


def _template_dirs(cfg: Config) -> tuple[str, ...]:
    lang = cfg.posting.language
    dirs: list[Path] = []
    if cfg.posting.templates_dir:
        base = cfg.resolve_path(cfg.posting.templates_dir)
        dirs += [base / lang, base]
    dirs.append(SHIPPED_TEMPLATES / lang)
    return tuple(str(d) for d in dirs)


@lru_cache(maxsize=8)
def _environment(dirs: tuple[str, ...]) -> jinja2.Environment:
    """Plain text, strict about unknown names so a typo in a custom template fails at start-up.

    Sandboxed: `templates_dir` is written by whoever can edit that folder, and a plain environment lets
    `{{ cycler.__init__.__globals__.os.system(...) }}` run a shell command. The immutable sandbox refuses
    private attributes and any call that changes an object.
    """
    return ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(list(dirs)), undefined=jinja2.StrictUndefined,
                                         autoescape=False, trim_blocks=True, lstrip_blocks=True)


def render_body(decision: DecisionValue, cfg: Config, reviewed_by: str | None, *, identification: bool,
            taxon_name: str | None = None) -> str:
    name = "identification.j2" if identification else "comment.j2"
    edited = taxon_name is not None and taxon_name != decision.taxon_name
    values = {
        "taxon_name": taxon_name or decision.taxon_name or "?",
        "suggested_name": decision.taxon_name or "?",
        "edited": edited,
        "rank": decision.rank or decision.kind,
        "kind": decision.kind,
        "probability": decision.score,
        "percent": f"{decision.score * 100:.0f}%",
        "n_photos": decision.n_photos,
        "model_name": decision.model_name,
        "model_version": decision.model_version,
        "reviewed_by": reviewed_by,
        "reviewed": reviewed_by is not None,
        "observation_id": decision.observation_id,
    }
    try:
        template = _environment(_template_dirs(cfg)).get_template(name)
        text = template.render(**values)
    except jinja2.TemplateError as exc:
        raise UsageError(f"[posting] templates: {name} ({cfg.posting.language}): {exc}") from None
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def render_text(decision: DecisionValue, cfg: Config, *, reviewed_by: str | None) -> str:
    """The body for this decision: an identification body for species, a comment otherwise.

    `reviewed_by` is the moderator who approved it; None (auto mode) makes the text say that no
    person reviewed it.
    """
    return render_body(decision, cfg, reviewed_by, identification=decision.kind == "species")


def check_templates(cfg: Config) -> None:
    """Renders both texts once with a dummy decision, so a broken custom template stops start-up."""
    dummy = DecisionValue(id=0, observation_id=0, cycle_id=None, kind="species", taxon_id=None,
                          taxon_name="Quercus robur", rank="species", score=0.5, reasons=(), n_photos=2,
                          model_name="check", model_version="0", cutoff=0.3, dry_run=False, mode="review",
                          status="proposed", created_at=None)
    render_body(dummy, cfg, "moderator", identification=True)
    render_body(dummy, cfg, None, identification=False)
