"""The one exception type that the CLI turns into a single error line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a config, a path, a name. Its message is shown as one line, no traceback."""
