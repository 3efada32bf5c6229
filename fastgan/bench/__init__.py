"""`fastgan bench`: training throughput of the real step for a ladder of optimisations."""
