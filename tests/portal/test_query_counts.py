"""The SQL statements of every page and endpoint of the biller's site, as the customer's journeys and the gateway
reach them over HTTP (tests/flows/page_queries.py), each under a ceiling: the count measured, the same on SQLite and
PostgreSQL unless said. A page over its ceiling, or served without one, fails with its id and its statements."""

from tests.flows import page_queries
from tests.flows.conftest import customer, person, world  # noqa: F401 - fixtures
from tests.support.query_counts import over_ceilings, recording

# Page id ("step: party METHOD URL name") -> most SQL statements. Measured on SQLite, which sends each transaction's
# BEGIN IMMEDIATE as a statement of its own (settings: transaction_mode); psycopg opens a PostgreSQL transaction
# without one, so the same page counts up to one statement less per transaction there: the ceiling is SQLite's
# count, the higher. Savepoints count the same on both.
CEILINGS: dict[str, int] = {
    "home: biller GET portal:home": 0,
    "terms: biller GET portal:terms": 0,
    "identification form, mobile: biller GET portal:mobile": 1,
    "identification form, fixed: biller GET portal:fixed": 1,
    "identification form, internet: biller GET portal:internet": 1,
    "identification, internet: biller GET portal:internet": 1,
    "verification form: biller GET portal:receipt_verify": 1,
    "sandbox phone, code: biller GET sandbox:phone": 2,
    "sandbox phone: biller GET sandbox:phone": 3,
    "identification, mobile: biller GET portal:invoices": 3,
    "identification, fixed: biller GET portal:invoices": 3,
    "identification, internet: biller GET portal:invoices": 3,
    "return, paid: biller POST portal:payment_ok": 3,
    "return, paid: biller GET portal:receipt": 3,
    "receipt: biller GET portal:receipt": 3,
    "receipt PDF: biller GET portal:receipt_pdf": 3,
    "card, refused: biller POST portal:payment_callback": 4,
    "cancel: biller POST portal:payment_callback": 4,
    "verification: biller POST portal:receipt_verify": 4,
    "verification link: biller GET portal:receipt_verify_link": 4,
    "bill PDF: biller GET portal:bill_pdf": 5,
    "return, failed: biller POST portal:payment_failed": 5,
    "return, cancelled: biller POST portal:payment_failed": 5,
    "order: biller POST portal:pay": 9,
    "identification, fixed: biller POST portal:fixed": 11,
    "identification, internet: biller POST portal:internet": 11,
    "identification, mobile: biller POST portal:mobile": 13,
    "sandbox phone, code: biller POST sandbox:phone": 16,
    "card, frictionless: biller POST portal:payment_callback": 17,
}


def test_every_biller_page_and_endpoint_stays_under_its_ceiling(world, customer, person):  # noqa: F811
    biller = world["biller"]
    page_queries.mobile_and_fixed_lines(customer)
    with recording() as log:
        with log.step("home"):
            person.get(biller + "/")
        with log.step("terms"):
            person.get(biller + "/conditions")
        page_queries.identify_every_way(log, person, biller)
        page_queries.pay_refused(log, person, biller)
        page_queries.cancel(log, person, biller)
        receipt = page_queries.pay_frictionless(log, person, biller)
        with log.step("receipt"):
            person.get(receipt.url)
        page_queries.receipt_pages(log, person, receipt)
        page_queries.status_queries(log)
    problems = over_ceilings(log, CEILINGS, parties=("biller",))
    assert not problems, "\n".join(problems)
