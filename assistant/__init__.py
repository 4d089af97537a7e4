"""distilled-assistant: small local students for email summaries and support replies.

The runtime (`assistant`) runs GGUF students on the CPU through llama-cpp-python;
the training side lives in the separate `distill` package.
"""

import os
import sys

__version__ = "0.1.0"

# llama.cpp's CPU threads are an OpenMP team per thread that calls it, and the app calls it from several
# worker threads (chat, one-line summaries, drafts). Once more OpenMP threads exist than CPUs, libgomp
# throttles its spin-wait to almost nothing, and each of a small model's many short steps waits for its
# threads to wake: a draft in the app took 2.7x as long as the same draft from `assistant reply` (2.8 s
# against 1.06 s, bench/tui_timing.py). An active wait policy with libgomp's ordinary spin count (a few
# hundred microseconds, then sleep: an idle app uses no CPU) brought it to 1.2 s headless, 1.8 s in a
# terminal. libgomp reads these once, when it loads, and torch's copy (loaded first when torch is imported
# first) is the one llama.cpp then uses: so they are set here, on the first import of the package. A user's
# own settings win. Linux only, where scripts/install.sh builds llama.cpp with GNU libgomp; LLVM's or Intel's
# OpenMP ignore GOMP_SPINCOUNT and would spin on under ACTIVE, so KMP_BLOCKTIME bounds them (200 ms, their default).
if sys.platform.startswith("linux"):
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
    os.environ.setdefault("GOMP_SPINCOUNT", "300000")
    os.environ.setdefault("KMP_BLOCKTIME", "200")


class AssistantError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it, the TUI notifies it)."""

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(message)
        self.title = title
