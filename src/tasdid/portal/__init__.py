"""The biller's customer pages: find a bill three ways, pay it, print the receipt. No models."""
