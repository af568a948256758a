"""The ``gate`` subcommands, one module per command group: its arguments (``add_parsers``) and handlers."""
