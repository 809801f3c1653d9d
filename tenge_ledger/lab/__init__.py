"""The privacy measurement lab, above the ledger: a seeded synthetic pilot (`pilot`), the matrix that runs it under
every privacy mode and measures each role's view (`matrix`, `metrics`, `detectors`, `manifest`), its HTML report
(`report`), and a small sandbox ledger for tests and examples (`sandbox`).

The lab drives ledgers (it imports the ledger service and the client); the privacy runtime it measures
(`tenge_ledger.privacy`) sits under the ledger and never imports the lab.
"""
