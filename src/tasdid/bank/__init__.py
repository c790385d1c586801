"""The sandbox issuer: banks, cards, accounts, holds, authorization rules, the ACS and its OTP."""
