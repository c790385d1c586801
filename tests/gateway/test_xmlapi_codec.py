"""The CC5Request / CC5Response codec alone (tasdid.gateway.xmlapi): no database, no Django."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.gateway import xmlapi


def request(*elements: str, extra: str = "") -> bytes:
    base = "<Name>api</Name><Password>secret-pass</Password><ClientId>600000001</ClientId><OrderId>O-1</OrderId>"
    return f"<CC5Request>{base}{''.join(elements)}{extra}</CC5Request>".encode()


def refused(body: bytes) -> str:
    with pytest.raises(xmlapi.ApiError) as exc:
        xmlapi.parse(body)
    return exc.value.code


def test_a_request_as_nestpay_clients_write_it():
    parsed = xmlapi.parse(b'<?xml version="1.0" encoding="utf-8"?>\n<CC5Request>\n  <Name> api </Name>\n'
                          b"  <Password>secret-pass</Password><ClientId>600000001</ClientId><Type>credit</Type>\n"
                          b"  <OrderId>O-1</OrderId><Total>10.5</Total><Currency>504</Currency>"
                          b"<Email>a@b.ma</Email><IPAddress>1.2.3.4</IPAddress></CC5Request>")
    assert (parsed.name, parsed.password, parsed.type, parsed.total, parsed.currency, parsed.query) == (
        "api", "secret-pass", "Credit", Decimal("10.50"), "504", "")
    assert "secret-pass" not in repr(parsed)


def test_queries_and_the_idempotency_key_come_in_extra():
    parsed = xmlapi.parse(request(extra="<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>"))
    assert (parsed.type, parsed.query) == ("", "ORDERHISTORY")
    keyed = xmlapi.parse(request("<Type>Credit</Type><Total>1</Total>",
                                 extra="<Extra><IDEMPOTENCY_KEY>refund-2</IDEMPOTENCY_KEY></Extra>"))
    assert keyed.idempotency_key == "refund-2" and keyed.total == Decimal("1.00")


@pytest.mark.parametrize(("body", "code"), [
    (request("<Type>Sale</Type>"), "BAD_TYPE"),
    (request(), "MISSING"),
    (request("<Type>Credit</Type>"), "MISSING"),
    (request("<Type>Credit</Type><Total>1,5</Total>"), "BAD_TOTAL"),
    (request("<Type>Credit</Type><Total>0</Total>"), "BAD_TOTAL"),
    (request("<Type>Credit</Type><Total>1.005</Total>"), "BAD_TOTAL"),
    (request("<Type>Void</Type><Currency>978</Currency>"), "BAD_CURRENCY"),
    (request("<Type>Void</Type><Type>Void</Type>"), "DUPLICATE"),
    (request("<Type>Void</Type>", extra="<Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra>"), "BAD_QUERY"),
    (request(extra="<Extra><ORDERSTATUS>QUERY</ORDERSTATUS><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>"),
     "BAD_QUERY"),
    (request(extra="<Extra><ORDERSTATUS>yes</ORDERSTATUS></Extra>"), "BAD_QUERY"),
    (request("<Type>Void</Type>", extra="<Extra><IDEMPOTENCY_KEY>a b</IDEMPOTENCY_KEY></Extra>"),
     "BAD_IDEMPOTENCY_KEY"),
    (request("<Type>Void</Type><Email>" + "x" * 129 + "</Email>"), "TOO_LONG"),
    (request('<Type a="1">Void</Type>'), "BAD_ELEMENT"),
    (request("<Type><x>Void</x></Type>"), "BAD_ELEMENT"),
    (b"<CC5Request><Name>a</Name><Password>b</Password><ClientId>1</ClientId><OrderId>a b</OrderId>"
     b"<Type>Void</Type></CC5Request>", "BAD_ORDERID"),
    (b'<!DOCTYPE x [<!ENTITY e "v">]><CC5Request/>', "FORBIDDEN_XML"),
    (b"\xef\xbb\xbf<CC5Request><Name>\xe9</Name></CC5Request>", "NOT_UTF8"),
])
def test_what_is_refused_and_its_code(body, code):
    assert refused(body) == code


def test_form_encoded_data_and_the_size_limit():
    xml = request("<Type>Void</Type>")
    from urllib.parse import quote_plus

    assert xmlapi.xml_of_body(b"DATA=" + quote_plus(xml.decode()).encode(),
                              "application/x-www-form-urlencoded; charset=utf-8") == xml
    assert xmlapi.xml_of_body(xml, "text/xml") == xml
    with pytest.raises(xmlapi.ApiError, match="TOO_LARGE"):
        xmlapi.xml_of_body(b"x" * (xmlapi.MAX_BODY + 1), "text/xml")


def test_an_answer_serialized_and_read_back():
    answer = xmlapi.ApiResponse(response="Declined", proc_return_code="05", order_id="O-1", group_id="O-1",
                                trans_id="RF0000000001", err_msg="Refusée <&> \x01é",
                                extra={"TRXCOUNT": "1", "TRX1": "Credit\tD\t1.00"})
    body = xmlapi.serialize(answer)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CC5Response><OrderId>O-1</OrderId>')
    back = xmlapi.read_response(body)
    assert back.err_msg == "Refusée <&> é" and back.extra == answer.extra and back.response == "Declined"


@given(st.binary(max_size=400))
def test_any_bytes_give_a_request_or_a_named_refusal(body):
    try:
        xmlapi.parse(body)
    except xmlapi.ApiError as exc:
        assert exc.code and exc.message
