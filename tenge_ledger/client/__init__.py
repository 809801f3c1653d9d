"""The client side of the prototype: a keystore of secret keys and a wallet that builds and signs operations.

The ledger itself only ever sees public keys and signatures; this package is what a bank's or a person's
software would do, kept here so the CLI, the demo and the benchmarks can sign on a user's behalf.
"""
