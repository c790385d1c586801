"""The centre monétique: the ISO 8583 switch between the gateway and the issuer banks (DESIGN.md §2, §5).

A party of its own: it imports ``tasdid.core`` only, and no other party imports it (import-linter contracts in
pyproject.toml); the gateway and the banks reach it over TCP, never through Python.

- ``server``: the asyncio server (``Switch``, ``SwitchConfig``, ``IssuerLink``), run by ``tasdid switch``.
- ``routing``: BIN routing, pure (``route_for``: the longest prefix wins).
- ``models``: ``Route`` (the routing table), ``JournalEntry`` (every message, masked), ``PendingReversal``.
- ``services`` (writes) and ``selectors`` (reads), called from the server in threads.
- ``admin`` and ``urls``: the party's web site (TASDID_SWITCH_URL, port 8003): its staff admin; the 3-D Secure
  directory comes here later.
- ``tasdid clearing`` (``management/commands/clearing``): the end-of-day clearing file, streamed from the journal
  (``selectors.clearing_details``) in the format of ``tasdid.core.clearing``.
- ``iso8583``: the codec (``tasdid.core.iso8583``), re-exported.

docs/iso8583.md, "The switch", says what it does on the wire.
"""
