"""``python -m s3fetch`` and the ``s3fetch`` command: the Rust CLI itself (same flags, output
and exit codes as the ``s3fetch`` binary).
"""

import signal
import sys

from . import _s3fetch


def main() -> None:
    """Run the command line in ``sys.argv`` and exit with its exit code."""
    # The CLI handles Ctrl-C and SIGTERM itself (stop, clean up, exit 130): leave the
    # signals to it instead of Python's KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(_s3fetch.main(["s3fetch", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
