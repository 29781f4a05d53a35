"""`plantbot scripted-review`: the synthetic world's scripted moderator (the review loop, offline)."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli import State, pass_state


@click.command("scripted-review")
@click.option("--world", "world_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The simulator world (World.save) whose truth the moderator knows, e.g. demo/world.")
@click.option("--moderator", default="moderator", show_default=True, help="Recorded as the reviewer.")
@click.option("--reject-every", type=click.IntRange(min=0), default=4, show_default=True,
              help="Reject every N-th wrong species instead of editing it (0: always edit).")
@pass_state
def scripted_review(state: State, world_dir: Path, moderator: str, reject_every: int) -> None:
    """Review the open proposals with the synthetic world's truth (approve, edit, reject; posts nothing)."""
    from bot.review_script import review_with_truth
    from bot.sim.model import World
    from bot.store import Store

    store = Store(state.config.database_path)
    try:
        result = review_with_truth(store, World.load(world_dir), moderator, reject_every)
    finally:
        store.close()
    acts = ", ".join(f"{n} {a}" for a, n in sorted(result.actions.items())) or "nothing to review"
    click.echo(f"{result.proposals} proposals, {result.right_before} right as proposed: {acts}")


def register(group: click.Group) -> None:
    group.add_command(scripted_review)
