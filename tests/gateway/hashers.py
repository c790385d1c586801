"""A password hasher for the tests that counts how many times it hashes (its ``encode``: making a hash and checking
a password against one each hash once), fast (MD5, salted): the XML API's equal work is checked by this count, never
by a time."""

from django.contrib.auth.hashers import MD5PasswordHasher


class CountingHasher(MD5PasswordHasher):
    algorithm = "counting_md5"
    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)
