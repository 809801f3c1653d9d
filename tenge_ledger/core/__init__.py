"""The nouns of the ledger: records, results, errors, limits and money. Imports nothing else of the project."""
