"""The trace log: what is kept of every operation, and the Merkle tree that makes it tamper-evident."""
