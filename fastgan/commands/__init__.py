"""Bodies of the CLI commands; each imports what it needs when it runs."""
