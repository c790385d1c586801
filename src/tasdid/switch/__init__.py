"""The centre monétique: the ISO 8583 switch between the gateway and the issuer banks (DESIGN.md §2, §5).

A party of its own: it imports ``tasdid.core`` only, and no other party imports it (import-linter contracts in
pyproject.toml); the gateway and the banks reach it over TCP, never through Python.
"""
