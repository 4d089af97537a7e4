"""`python -m assistant.cli`: the `assistant` command (the installer uses this form)."""

from assistant.cli import main

main()
