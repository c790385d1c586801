"""The biller: customers, service lines, bills, invoices, payment orders, payments, receipts."""
