"""CLI subcommands, one module per stage; each only parses and calls the library."""
