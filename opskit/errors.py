"""Typed errors, defined once and mapped once: to an exit code and one line in the CLI,
to a banner on the affected panel in the TUI."""

from __future__ import annotations

# Exit codes, stable and documented in docs/cli.md.
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_USAGE = 2  # bad config or bad arguments (click uses 2 as well)
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_BAD_RESPONSE = 5
EXIT_NOT_FOUND = 6


class OpskitError(Exception):
    """An expected failure: one line for the operator, no traceback."""

    exit_code = 1
    title = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(OpskitError):
    exit_code = EXIT_USAGE
    title = "bad configuration"


class UsageError(OpskitError):
    exit_code = EXIT_USAGE
    title = "bad input"


class BackendError(OpskitError):
    """A backend could not answer usefully. `backend` names it (prometheus, ...)."""

    exit_code = EXIT_UNREACHABLE
    title = "backend error"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.reason = message


class BackendUnreachable(BackendError):
    title = "unreachable"


class BackendTimeout(BackendUnreachable):
    title = "timed out"


class AuthFailed(BackendError):
    exit_code = EXIT_AUTH
    title = "authentication failed"


class BadResponse(BackendError):
    exit_code = EXIT_BAD_RESPONSE
    title = "bad response"


class NotFound(BackendError):
    exit_code = EXIT_NOT_FOUND
    title = "not found"
