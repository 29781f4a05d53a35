"""Platform adapters: the only code that talks HTTP to iNaturalist or its forks."""

from bot.platforms.base import ObservationPage, Platform, Rejected

__all__ = ["ObservationPage", "Platform", "Rejected"]
