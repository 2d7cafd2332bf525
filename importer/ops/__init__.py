"""Operator commands (``importer ops …``): see ``cli`` for the commands, ``commands`` for what they do."""
