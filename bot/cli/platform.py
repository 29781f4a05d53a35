"""Platform commands: `plantbot whoami` checks the bot account's credentials against the platform."""

from __future__ import annotations

import click

from bot.cli import State, pass_state


@click.command("whoami")
@pass_state
def whoami(state: State) -> None:
    """Log in with the credentials from the environment and print the account's login.

    Reads PLANTBOT_API_TOKEN, or INAT_APP_ID, INAT_APP_SECRET, INAT_USERNAME and INAT_PASSWORD
    (the password grant).  The token itself is never printed.
    """
    from bot.config import Secrets
    from bot.platforms import create_platform

    cfg = state.config
    platform = create_platform(cfg, Secrets.from_env())
    try:
        user = platform.get_current_user(platform.get_token())
    finally:
        platform.close()
    click.echo(f"{user.login} (user id {user.id}) on {platform.name}")


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(whoami)
