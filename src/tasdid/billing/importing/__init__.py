"""The bill import's pure parts: reading the JSON file as a stream, checking its records, naming problems.

The database side (looking records up, creating them, all or nothing) is ``tasdid.billing.services.importing``.
The file format is described in ``docs/import-format.md``.
"""
