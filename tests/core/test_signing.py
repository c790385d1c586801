from tasdid.core.signing import natural_key, ver3_hash, ver3_verify

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
    assert natural_key("²") == ((1, 0, "²"),)
    assert natural_key("item٢ref") == ((1, 0, "item٢ref"),)
    assert natural_key("item2ref") == ((1, 0, "item"), (0, 2, "2"), (1, 0, "ref"))
    assert ver3_verify({"²": "x", "hash": ver3_hash({"²": "x"}, "KEY")}, "KEY")
