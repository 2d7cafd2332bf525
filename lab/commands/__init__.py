"""``drill`` subcommands that live outside lab/cli.py, each a module registered there."""
