"""The hosted payment page: merchants, payment sessions, card attempts, 3-D Secure server, acquirer client."""
