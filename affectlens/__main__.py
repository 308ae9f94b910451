"""``python -m affectlens``: the same command as the ``affectlens`` console script."""

from affectlens.cli import main

main()
