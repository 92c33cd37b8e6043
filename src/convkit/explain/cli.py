"""`convkit explain ...` and `convkit show ...` subcommands."""


def add_commands(sub):
    """Register this module's subcommands on the `convkit` parser's subparsers."""
