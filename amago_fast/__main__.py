"""`python -m amago_fast` == `amago-fast`."""

import sys

from .cli import main

sys.exit(main())
