"""`python -m assistants.server [--host 127.0.0.1] [--port 8000]`."""

import sys

from assistants.server.app import main

if __name__ == "__main__":
    sys.exit(main())
