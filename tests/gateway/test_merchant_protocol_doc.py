"""docs/merchant-protocol.md says what the code does: its test vector, its Python example and its curl example
are checked against the gateway (the curl one posted to the real gateway server on 127.0.0.1)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasdid.core.signing import ver3_hash, ver3_plaintext
from tasdid.gateway import services
from tasdid.gateway.models import PaymentSession

DOC = (Path(__file__).resolve().parents[2] / "docs" / "merchant-protocol.md").read_text(encoding="utf-8")


def block(info: str) -> str:
    """The fenced block whose info string is ``info`` (exactly one)."""
    (body,) = re.findall(rf"^```{re.escape(info)}\n(.*?)^```$", DOC, flags=re.S | re.M)
    return body


def vector() -> dict[str, str]:
    return dict(line.split("=", 1) for line in block("text vector-fields").splitlines())


def python_example():
    namespace: dict = {}
    exec(compile(block("python"), "docs/merchant-protocol.md", "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["ver3_hash"]


def test_the_test_vector_is_what_the_code_computes():
    fields = vector()
    assert len(fields) == 19 and fields["BillToCompany"] == "ACME|Maroc\\Sud"
    assert ver3_plaintext(fields, "TEST1234") == block("text vector-plaintext").strip()
    assert ver3_hash(fields, "TEST1234") == block("text vector-hash").strip()


def test_the_python_example_computes_the_vector():
    assert python_example()(vector(), "TEST1234") == block("text vector-hash").strip()


# names of letters, digits without leading zeros and "_", for which the doc says its short key is exact
NAMES = st.sampled_from(["amount", "Amount2", "item1Ref", "item10Ref", "ITEM2ref", "oid", "hash", "encoding",
                         "BillToName", "x_9", "x_a", "xa", "x9", "X_", "é", "EXTRA.CARDBRAND", "a10b2", "a10b10",
                         "callbackUrl", "callbackCall", "ErrMsg", "eci"])


@settings(deadline=None)  # the example is exec'd from the doc on each call
@given(fields=st.dictionaries(NAMES, st.text(max_size=12), max_size=10), key=st.text(max_size=10))
def test_the_python_example_agrees_with_the_code(fields, key):
    assert python_example()(fields, key) == ver3_hash(fields, key)


def test_the_curl_example_is_accepted_by_the_gateway(parties):
    services.merchant_register(client_id="600000000", name="Boutique du vecteur", store_key="TEST1234",
                               return_hosts=["shop.example.ma"])
    gateway = parties["gateway"]
    run = subprocess.run(["bash", "-c", block("sh")], env={**os.environ, "GATEWAY": gateway}, capture_output=True,
                         text=True, timeout=60, check=True)
    status, location = run.stdout.split()
    assert status == "303"
    assert re.fullmatch(rf"{re.escape(gateway)}/paiement/[\w-]+", location)
    session = PaymentSession.objects.get()
    assert (session.oid, str(session.amount), session.lang) == ("ORDER-0001", "100.00", "fr")
    assert session.request_fields["BillToCompany"] == "ACME|Maroc\\Sud"


@pytest.mark.parametrize("message", [
    "Le champ obligatoire « oid » est absent de la demande de paiement.",
    "L'algorithme de signature « hashAlgorithm » doit être « ver3 ».",
    "La signature « hash » de la demande de paiement est invalide.",
    "L'adresse « okUrl » n'est pas une adresse enregistrée pour ce marchand.",
    "La durée « sessionTimeout » doit être comprise entre 60 et 3600 secondes.",
    "Cette commande est déjà en cours de paiement dans un autre navigateur",
])
def test_the_refusals_quoted_are_the_gateways(message):
    # the gateway's sources with their implicitly joined string literals joined
    source = "".join(p.read_text(encoding="utf-8") for p in Path(services.__file__).parent.glob("*.py"))
    source = re.sub(r'"\s*\n\s*"', "", source)
    generic = message.replace("« oid »", "« %(name)s »").replace("« okUrl »", "« %(name)s »")
    generic = generic.replace("60 et 3600", "%(min)s et %(max)s")
    assert message in DOC
    assert generic in source


# --- §9, the XML API -------------------------------------------------------------------------------------------


def test_the_xml_api_curl_example_is_a_request_the_gateway_reads():
    from decimal import Decimal

    from tasdid.gateway import xmlapi

    xml = block("sh api-curl").split("<<'XML'\n", 1)[1].rsplit("XML\n", 1)[0]
    parsed = xmlapi.parse(xml.encode("utf-8"))
    assert (parsed.name, parsed.client_id, parsed.type, parsed.order_id, parsed.total, parsed.idempotency_key) == (
        "boutique-api", "600000001", "Credit", "ORDER-0001", Decimal("100.00"), "refund-2026-0001")


def test_the_xml_api_python_example_talks_to_the_gateway(parties):
    from tasdid.gateway import xmlapi

    namespace: dict = {}
    exec(compile(block("python api-client"), "docs/merchant-protocol.md", "exec"), namespace)  # noqa: S102
    body = namespace["cc5_request"]("boutique-api", "mot-de-passe-api-0001", "600000001", "ORDER-0001",
                                    type_="Credit", total="10.50", key="refund-1")
    parsed = xmlapi.parse(body)
    assert (parsed.type, str(parsed.total), parsed.idempotency_key) == ("Credit", "10.50", "refund-1")
    merchant = services.merchant_register(client_id="600000001", name="Boutique", store_key="TEST1234",
                                          return_hosts=["shop.example.ma"]).merchant
    services.api_user_create(merchant=merchant, name="boutique-api", password="mot-de-passe-api-0001")
    query = namespace["cc5_request"]("boutique-api", "mot-de-passe-api-0001", "600000001", "ORDER-0001",
                                     query="ORDERSTATUS")
    answer = namespace["call"](parties["gateway"], query)
    assert (answer["Response"], answer["ProcReturnCode"], answer["OrderId"], answer["Extra"]["ERRORCODE"]) == (
        "Error", "99", "ORDER-0001", "ORDER_UNKNOWN")
