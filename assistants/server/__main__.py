"""`python -m assistants.server [--host 127.0.0.1] [--port 8000]`."""

import sys

from assistants.server.app import main

sys.exit(main())
