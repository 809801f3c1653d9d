"""A worker process that makes escrow key encapsulations ahead of need (see `threshold.Encapsulations`).

Run as `python -m tenge_ledger.privacy.kem_worker LEDGER_ID GROUP_PUBLIC_HEX`. It reads requests from stdin, each
a 4-byte big-endian count n, and answers each with n records of R (32 bytes) || record key (32 bytes) on stdout.
It exits at the end of stdin. Its parent is the operator's own process: the record keys it makes are for records
that process is about to seal anyway.
"""

from __future__ import annotations

import sys

from .threshold import ENCAPSULATION_BYTES, encapsulate_many, request_count_max


def serve(ledger_id: str, group_public: bytes, requests, answers) -> None:
    while True:
        head = requests.read(4)
        if len(head) < 4:
            return
        n = int.from_bytes(head, "big")
        if not 0 < n <= request_count_max:
            return
        answer = b"".join(kem + key for kem, key in encapsulate_many(ledger_id, group_public, n))
        assert len(answer) == n * ENCAPSULATION_BYTES
        answers.write(answer)
        answers.flush()


if __name__ == "__main__":
    serve(sys.argv[1], bytes.fromhex(sys.argv[2]), sys.stdin.buffer, sys.stdout.buffer)
