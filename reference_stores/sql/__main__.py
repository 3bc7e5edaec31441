"""``python -m reference_stores.sql``: the schema migration command (see ``migrate``)."""

from __future__ import annotations

import sys

from reference_stores.sql.migrate import main

if __name__ == "__main__":
    sys.exit(main())
