"""`python -m distill.cli ...` (torchrun needs a module): the `distill` command."""

from distill.cli import main

main()
