"""Errors a user can act on: stages print them as one line instead of a traceback."""


class BanError(Exception):
    """A problem with the user's input or files; the message says what to do.

    ``exit_code`` follows the convention of command-line tools: 2 for bad
    configuration or usage, 1 for a failure while running.
    """

    exit_code = 1


class ConfigError(BanError):
    """Invalid params: the message names the offending key."""

    exit_code = 2


class DataError(BanError):
    """Missing, unreadable or inconsistent data files."""


class CheckpointError(BanError):
    """A missing, corrupt or mismatched checkpoint."""


class TrainingError(BanError):
    """Training cannot go on (for example a non-finite loss)."""
