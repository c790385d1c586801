"""The biller's reads, one module per concern."""
