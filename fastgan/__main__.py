"""`python -m fastgan ...`: the form `accelerate launch -m fastgan train ...` uses."""

from fastgan.cli import main

main()
