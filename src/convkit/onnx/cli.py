"""`convkit run`, `convkit inspect` and `convkit export` subcommands."""


def add_commands(sub):
    """Register this module's subcommands on the `convkit` parser's subparsers."""
