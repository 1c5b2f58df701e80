"""UserError: a problem to tell the user in one line, which any module may raise."""


class UserError(Exception):
    """A problem to tell the user in one line; the scripts then exit with 1."""
