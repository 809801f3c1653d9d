"""Apply throughput: `python benchmarks/apply.py [--json]` (the same as `tenge bench`)."""

from tenge_ledger.bench import main

if __name__ == "__main__":
    main()
