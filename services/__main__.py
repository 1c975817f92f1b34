"""``python -m services NAME``: the ``exchange`` command without its console script, which is
how ``exchange up`` starts each service with the same interpreter."""

from services.cli import main

raise SystemExit(main())
