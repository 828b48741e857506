#!/usr/bin/env python3
"""Runs tests/e2e/mock_upstream.py unchanged except for TCP_NODELAY on accepted sockets.

The mock's BaseHTTPRequestHandler leaves Nagle's algorithm on. Its SSE replies write the
headers and then each event as separate small segments, so on loopback the first event
waits for the client's delayed ACK: about 40 ms per stream, for every client (this bench,
workerd alike). Real provider front ends send with TCP_NODELAY; so does this wrapper, so the
bench measures the gateway rather than Linux's Nagle/delayed-ACK interplay.
Usage is the mock's: python bench/mock_nodelay.py --port 0   (prints "READY <port>").
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
import mock_upstream  # noqa: E402

mock_upstream.Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    mock_upstream.main(sys.argv[1:])
