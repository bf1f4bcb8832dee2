"""Typed errors, defined once and mapped once: to an exit code and one line in the CLI,
to a banner on the affected panel in the TUI."""

from __future__ import annotations

# Exit codes, stable and documented in docs/cli.md. 0-3 are findings (the Nagios
# plugin convention: ok, warning, critical, unknown); 4-6 say why a backend failed; the
# operator's own mistakes use the sysexits codes, so a cron job can tell "the stack is
# critical" (2) from "the command line or the config is wrong" (64, 78).
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_BAD_RESPONSE = 5
EXIT_NOT_FOUND = 6
EXIT_UNSUPPORTED = 7  # the backend does not serve this (VictoriaMetrics has no rules API)
EXIT_DECLINED = 10  # the operator answered no: nothing changed
EXIT_USAGE = 64  # bad arguments or input (sysexits EX_USAGE; click's usage errors too)
EXIT_DATA = 65  # a backup or input file that is corrupt (sysexits EX_DATAERR)
EXIT_INTERNAL = 70  # an opskit bug (sysexits EX_SOFTWARE)
EXIT_BUSY = 75  # another run holds the lock: try again later (sysexits EX_TEMPFAIL)
EXIT_CONFIG = 78  # bad configuration (sysexits EX_CONFIG)
EXIT_INTERRUPTED = 130  # Ctrl-C


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
    exit_code = EXIT_CONFIG
    title = "bad configuration"


class UsageError(OpskitError):
    exit_code = EXIT_USAGE
    title = "bad input"


class NeedsConfirmation(UsageError):
    """A destructive action with no terminal to ask and no --yes."""

    title = "not confirmed"


class Declined(OpskitError):
    exit_code = EXIT_DECLINED
    title = "declined"


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


class Unsupported(BackendError):
    """The backend answers, but does not serve what was asked: an endpoint it lacks or
    only a placeholder of (VictoriaMetrics has no /api/v1/status/runtimeinfo; its
    /api/v1/rules is empty without vmalert). The message names the endpoint."""

    exit_code = EXIT_UNSUPPORTED
    title = "not served"
