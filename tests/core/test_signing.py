import base64
import hashlib

import pytest

from tasdid.core.signing import (
    natcasecmp,
    natural_key,
    received_value,
    ver3_hash,
    ver3_ordered,
    ver3_verify,
    ver3_verify_received,
)

VECTOR_FIELDS = {
    "clientid": "600000000", "amount": "100.00", "okUrl": "https://shop.example.ma/cmi/ok",
    "failUrl": "https://shop.example.ma/cmi/fail", "TranType": "PreAuth",
    "callbackUrl": "https://shop.example.ma/cmi/callback", "shopurl": "https://shop.example.ma/cart",
    "currency": "504", "rnd": "1700000000", "storetype": "3D_PAY_HOSTING", "hashAlgorithm": "ver3", "lang": "fr",
    "BillToName": "Test User", "BillToCompany": "ACME|Maroc\\Sud", "email": "test@example.ma",
    "tel": "0600000000", "oid": "ORDER-0001", "encoding": "UTF-8", "AutoRedirect": "true",
}
VECTOR_HASH = "xscjCu9eqspS8gn94AC/YwWsuBHSUmmvRoX/9ug9sdPR0kNwlNBoKCdIvBM3P2tkaK703cD9W7gMfMNMbfl+lg=="


def test_ver3_hash_matches_design_test_vector():
    assert ver3_hash(VECTOR_FIELDS, "TEST1234") == VECTOR_HASH


def test_ver3_verify_accepts_vector_and_refuses_tampering():
    posted = {**VECTOR_FIELDS, "HASH": VECTOR_HASH}
    assert ver3_verify(posted, "TEST1234", hash_field="hash")
    assert not ver3_verify({**posted, "amount": "1.00"}, "TEST1234")
    assert not ver3_verify(posted, "TEST1235")
    assert not ver3_verify({**posted, "extra": "x"}, "TEST1234")
    assert not ver3_verify(VECTOR_FIELDS, "TEST1234")  # no hash at all


def test_encoding_and_hash_fields_are_excluded_whatever_their_case():
    base = ver3_hash(VECTOR_FIELDS, "TEST1234")
    assert ver3_hash({**VECTOR_FIELDS, "ENCODING": "latin1", "Hash": "x"}, "TEST1234") == base
    assert ver3_hash({**VECTOR_FIELDS, "encodings": "x"}, "TEST1234") != base
    without = {k: v for k, v in VECTOR_FIELDS.items() if k != "encoding"}
    assert ver3_hash(without, "TEST1234") == base


def test_natural_order_puts_item2_before_item10_case_insensitively():
    names = ["item10Ref", "Item2Ref", "item1Ref", "amount", "AutoRedirect"]
    assert sorted(names, key=natural_key) == ["amount", "AutoRedirect", "item1Ref", "Item2Ref", "item10Ref"]


def test_field_names_with_non_ascii_digits_sort_as_letters_and_never_crash():
    assert sorted(["item3ref", "item٢ref", "item2ref", "²", "1"], key=natural_key) == [
        "1", "item2ref", "item3ref", "item٢ref", "²"]
    assert ver3_verify({"²": "x", "hash": ver3_hash({"²": "x"}, "KEY")}, "KEY")


@pytest.mark.parametrize(("a", "b", "expected"), [
    # PHP's strnatcasecmp, case folded to upper case: "_" and "[" come after the letters, "@" before them
    ("aab", "a_b", -1), ("A_B", "aab", 1), ("a[b", "aab", 1), ("a@b", "aab", -1), ("x_name", "xname", 1),
    # a character below "0" ("." "-" "/") comes before a digit, one above "9" (":" "@" letters) after it
    ("item.x", "item1", -1), ("EXTRA.CARDBRAND", "EXTRA1", -1), ("a-b", "a1", -1), ("a:b", "a1", 1),
    # digit runs by value; with a leading zero, digit by digit (as decimals); leading zeros at the start skipped
    ("item2Ref", "item10Ref", -1), ("a10", "a9", 1), ("a01", "a1", -1), ("a010", "a01", 1), ("007", "7", 0),
    ("010", "9", 1), ("x2y", "x2z", -1), ("x2", "x2y", -1),
    # whitespace skipped; case ignored; a prefix first; the empty name
    ("a b", "ab", 0), ("ABC", "abc", 0), ("ab", "abc", -1), ("", "a", -1), ("", "", 0),
    # non-ASCII names by their UTF-8 bytes
    ("é", "z", 1), ("ا", "é", 1),
])
def test_names_compare_as_php_strnatcasecmp(a, b, expected):
    assert natcasecmp(a, b) == expected
    assert natcasecmp(b, a) == -expected


# --- the order of the fields posted, and the merchant kit's reading of them (DESIGN.md §4) ---------------


def test_fields_are_put_in_ver3_hash_order_with_the_hash_last():
    fields = {"HASH": "h", "oid": "1", "item10Ref": "b", "Amount": "2", "EXTRA.TRXDATE": "d", "item2Ref": "a",
              "encoding": "UTF-8", "clientid": "6"}
    assert list(ver3_ordered(fields)) == ["Amount", "clientid", "encoding", "EXTRA.TRXDATE", "item2Ref", "item10Ref",
                                          "oid", "HASH"]
    assert ver3_ordered(fields) == fields  # same fields, same values: only their order changes


def test_values_in_hash_order_joined_give_the_ver3_plaintext():
    # a merchant that hashes the values in the order they came, skipping hash and encoding, gets our hash
    posted = ver3_ordered({**VECTOR_FIELDS, "HASH": VECTOR_HASH})
    values = [v.replace("\\", "\\\\").replace("|", "\\|") for k, v in posted.items()
              if k.lower() not in ("hash", "encoding")]
    digest = hashlib.sha512("|".join([*values, "TEST1234"]).encode()).digest()
    assert base64.b64encode(digest).decode() == VECTOR_HASH


@pytest.mark.parametrize(("posted", "read"), [
    ("285.00\n", "285.00"), (" Test User\r\n", "Test User"), ("\t00\x0b", "00"),
    ("ACME &amp; Fils", "ACME & Fils"), ("l&#039;Atlas", "l'Atlas"), ("&#x41;", "A"), ("caf&eacute;", "café"),
    ("AT&T", "AT&T"), ("&amp", "&amp"), ("a&b;c", "a&b;c"), ("&#32;x&#32;", "x"), ("", ""),
])
def test_a_value_is_read_as_the_merchant_kit_reads_it(posted, read):
    assert received_value(posted) == read


def test_a_message_with_a_trailing_newline_in_a_value_verifies_as_cmi_sends_it():
    # CMI's hash leaves out the newline it adds after a value: the kit trims it, so do we
    fields = {**VECTOR_FIELDS, "BillToName": "Test User\n", "HASH": VECTOR_HASH}
    assert not ver3_verify(fields, "TEST1234", hash_field="HASH")
    read = ver3_verify_received(fields, "TEST1234")
    assert read is not None and read["BillToName"] == "Test User" and "HASH" not in read
    assert read == {k: v for k, v in VECTOR_FIELDS.items()}


def test_a_value_with_entities_verifies_over_its_decoded_text():
    fields = {**VECTOR_FIELDS, "BillToName": "Tom & Jerry"}
    posted = {**fields, "BillToName": "Tom &amp; Jerry", "HASH": ver3_hash(fields, "TEST1234")}
    assert ver3_verify_received(posted, "TEST1234")["BillToName"] == "Tom & Jerry"


def test_a_message_hashed_over_the_values_as_posted_still_verifies():
    fields = {**VECTOR_FIELDS, "BillToName": " padded "}
    read = ver3_verify_received({**fields, "HASH": ver3_hash(fields, "TEST1234")}, "TEST1234")
    assert read is not None and read["BillToName"] == "padded"


@pytest.mark.parametrize("change", [
    {"amount": "1000.00"}, {"amount": "100.01\n"}, {"oid": "ORDER-0002"}, {"extra": "x"}, {"HASH": ""},
    {"HASH": VECTOR_HASH[:-4] + "AAA="}, {"BillToName": "Test  User"},
])
def test_a_tampered_message_is_refused_whatever_the_reading(change):
    fields = {**VECTOR_FIELDS, "HASH": VECTOR_HASH, **change}
    assert ver3_verify_received(fields, "TEST1234") is None
    assert ver3_verify_received(fields, "TEST1235") is None
    assert ver3_verify_received(VECTOR_FIELDS, "TEST1234") is None  # no hash at all
