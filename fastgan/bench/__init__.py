"""`fastgan bench`: training throughput of the real step: a ladder of optimisations, a grid of every combination, batch scaling."""
