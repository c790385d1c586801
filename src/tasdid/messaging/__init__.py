"""Infrastructure for every party: SMS and email outbox, inbound SMS keywords, the sandbox phone."""
