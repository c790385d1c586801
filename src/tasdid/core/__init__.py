"""Party-free building blocks: money, signing, card numbers, phone numbers, codes, HTTP plumbing."""
