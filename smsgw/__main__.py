"""``python -m smsgw`` runs the same command line as ``smsgw``."""
from smsgw.cli import main

main()
