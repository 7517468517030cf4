"""`python -m cli ...` is `warehouse-stock ...` without the project installed."""

import sys

from cli.main import main

sys.exit(main())
