"""The package list, which pyproject.toml cannot express: the repository keeps `cli/` and `policies/` at its
root, and the wheel installs them as `tenge_cli` (a top-level `cli` would collide with other projects') and as
`tenge_ledger.policies` (package data the demo, the matrix and the report read wherever the wheel is
installed). `tests/test_packaging.py` keeps the wheel's package list in step."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["tenge_ledger", "tenge_ledger.*"]),
        "tenge_cli",
        "tenge_ledger.policies",
    ],
    package_dir={"tenge_cli": "cli", "tenge_ledger.policies": "policies"},
)
