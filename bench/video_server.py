"""A loopback stand-in for OpenRouter's storage host, in its own process so that serving the bytes takes
no CPU time (or GIL) from the process being measured.

GET /video?bytes=N streams N bytes of a deterministic, structurally valid MP4 (``ftyp``, a small real
``moov``, then an ``mdat`` of size 0 "to the end of the file" whose payload is pseudo-random blocks),
so that the download's box check passes for any N and the benchmark measures its real cost: the moov is
parsed, the mdat payload counted and skipped. ``&stall_after=M`` stops sending after M bytes until the
client goes away (a download that a crash interrupts half-way); the body then ends short."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from videogen_local.sim.mp4_boxes import streaming_head

BLOCK_BYTES = 1024 * 1024
STALL_SECONDS = 120

HEAD = streaming_head()  # every block starts with it; after the first they are mdat payload like any other


def _block() -> bytes:
    return random.Random(6).randbytes(BLOCK_BYTES)


def body_blocks(total: int) -> list[tuple[int, int]]:
    """(offset, length) of each block; the body is repetitions of one block: HEAD, then random bytes."""
    return [(offset, min(BLOCK_BYTES, total - offset)) for offset in range(0, total, BLOCK_BYTES)]


def expected_sha256(total: int) -> str:
    block = HEAD + _block()[len(HEAD) :]
    digest = hashlib.sha256()
    for _, length in body_blocks(total):
        digest.update(block[:length])
    return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    block = HEAD + _block()[len(HEAD) :]

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        total = int(query.get("bytes", ["0"])[0])
        stall_after = int(query["stall_after"][0]) if "stall_after" in query else None
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        sent = 0
        try:
            for _, length in body_blocks(total):
                if stall_after is not None and sent >= stall_after:
                    time.sleep(STALL_SECONDS)  # the client is killed meanwhile
                    return
                self.wfile.write(self.block[:length])
                sent += length
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
