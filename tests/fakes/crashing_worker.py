"""A model worker program that dies of SIGILL as it starts the first time (a marker file remembers), then is the real one.

Run as `python tests/fakes/crashing_worker.py MARKER`: what a llama.cpp built for the wrong CPU does on its first
instruction, without needing such a build.
"""

import os
import resource
import runpy
import signal
import sys

marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    sys.stdin.readline()  # the parent's load request, as the real worker reads it
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGILL)
sys.argv = sys.argv[:1]
runpy.run_module("assistants.providers.model_worker", run_name="__main__")
