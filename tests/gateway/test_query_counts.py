"""The SQL statements of every page and endpoint of the gateway, as the customer's journeys and the biller reach
them over HTTP (tests/flows/page_queries.py), each under a ceiling: the count measured, the same on SQLite and
PostgreSQL unless said. A page over its ceiling, or served without one, fails with its id and its statements."""

from tests.flows import page_queries
from tests.flows.conftest import customer, person, world  # noqa: F401 - fixtures
from tests.gateway.conftest import merchant_fields
from tests.support.query_counts import over_ceilings, recording

# Page id ("step: party METHOD URL name") -> most SQL statements. Measured on SQLite, which sends each transaction's
# BEGIN IMMEDIATE as a statement of its own (settings: transaction_mode); psycopg opens a PostgreSQL transaction
# without one, so the same page counts up to one statement less per transaction there: the ceiling is SQLite's
# count, the higher. Savepoints count the same on both.
CEILINGS: dict[str, int] = {
    "refusal in English: gateway GET gateway_refusal": 1,
    "terms: gateway GET gateway_conditions": 1,
    "merchant request: gateway GET gateway_pay": 4,
    "defer: gateway GET gateway_pay": 2,
    "restore: gateway GET gateway_pay": 2,
    "order status: gateway POST gateway_order_status": 3,
    "callback again: gateway POST gateway_order_status": 3,
    "payment page again: gateway GET gateway_pay": 4,
    "challenge code: gateway POST gateway_rreq": 4,
    "refund: gateway POST gateway_merchant_api": 30,  # the address lock read, the claim linked to its operation
    "order history: gateway POST gateway_merchant_api": 6,  # the address lock read
    "merchant request refused: gateway POST gateway_est3dgate": 5,
    "defer: gateway POST gateway_pay": 6,
    "restore: gateway POST gateway_pay": 6,
    "merchant request: gateway POST gateway_est3dgate": 10,
    "cancel: gateway POST gateway_pay": 9,
    "card, challenged: gateway POST gateway_pay": 14,
    "card, refused: gateway POST gateway_pay": 41,
    "3-D Secure return: gateway POST gateway_notification": 49,
    "card, frictionless: gateway POST gateway_pay": 56,
}


def test_every_gateway_page_and_endpoint_stays_under_its_ceiling(world, customer, person):  # noqa: F811
    biller, gateway = world["biller"], world["gateway"]
    with recording() as log:
        page_queries.pay_refused(log, person, biller)
        page_queries.cancel(log, person, biller)
        receipt = page_queries.pay_frictionless(log, person, biller)
        page_queries.status_queries(log)
        page_queries.refund(log)
        page_queries.second_customer()
        page_queries.pay_with_challenge(log, person, biller)
        with log.step("merchant request refused"):
            refused = person.post(gateway + "/fim/est3Dgate", {**merchant_fields(), "hash": "wrong"})
        assert refused.status == 400
        with log.step("refusal in English"):
            person.get(refused.link("English"))
        with log.step("terms"):
            person.get(gateway + "/conditions")
    assert receipt.status == 200
    problems = over_ceilings(log, CEILINGS, parties=("gateway",))
    assert not problems, "\n".join(problems)
