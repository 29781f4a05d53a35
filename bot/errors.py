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
    """The platform answered something we cannot use (after retries).

    `status` is the HTTP status when there was an answer; `retry_after` (seconds) is set when the
    platform or our own limiter asks us to slow down, so callers branch on data, never on the text.
    """

    def __init__(self, message: str = "", *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        """True when going on now would only meet the same limit (HTTP 429, a spent budget)."""
        return self.status == 429 or self.retry_after is not None


class AuthError(PlatformError):
    """Credentials missing, refused or expired."""


class BudgetExhausted(PlatformError):
    """The day's (or hour's) request or media budget is spent; work resumes when it refills."""


class PhotoRefused(PlantBotError):
    """A photo URL we will not fetch (scheme, host, address, too many redirects); the message says which rule."""


class PhotoHostError(PlatformError):
    """A photo host's answer we could not use: no connection, an HTTP error status (in `status`, with
    `retry_after` when the host sent one), a broken or stalled download."""
