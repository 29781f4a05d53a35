"""The small set of domain errors the CLI turns into one-line messages.

Each carries a message already fit for a user; the CLI prints it and exits with `exit_code`.
"""


class PlantBotError(Exception):
    exit_code = 1


class UsageError(PlantBotError):
    """Bad input from the user: a config, a bundle, a command-line value."""

    exit_code = 2


class BundleError(UsageError):
    """A model bundle that cannot be loaded as it stands."""


class PlatformError(PlantBotError):
    """The platform answered something we cannot use (after retries)."""


class AuthError(PlatformError):
    """Credentials missing, refused or expired."""


class BudgetExhausted(PlatformError):
    """The day's (or hour's) request or media budget is spent; work resumes when it refills."""
