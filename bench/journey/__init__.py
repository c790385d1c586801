"""End-to-end payment benchmark (python -m bench.journey)."""
