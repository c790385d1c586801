"""The biller's writes, one module per concern (identification, fidelio codes, payments, import)."""
