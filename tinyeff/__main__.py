"""``python -m tinyeff`` runs the command-line interface."""
from tinyeff.cli import main

raise SystemExit(main())
