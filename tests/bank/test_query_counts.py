"""The SQL statements of every page and endpoint of the bank's site (the ACS), as the customer's journeys reach them
over HTTP (tests/flows/page_queries.py), each under a ceiling: the count measured, the same on SQLite and PostgreSQL
unless said. A page over its ceiling, or served without one, fails with its id and its statements."""

from tests.flows import page_queries
from tests.flows.conftest import customer, person, world  # noqa: F401 - fixtures
from tests.support.query_counts import over_ceilings, recording

# Page id ("step: party METHOD URL name") -> most SQL statements. Measured on SQLite, which sends each transaction's
# BEGIN IMMEDIATE as a statement of its own (settings: transaction_mode); psycopg opens a PostgreSQL transaction
# without one, so the same page counts up to one statement less per transaction there: the ceiling is SQLite's
# count, the higher. Savepoints count the same on both.
CEILINGS: dict[str, int] = {
    "card, frictionless: bank POST acs_areq": 5,
    "card, challenged: bank POST acs_areq": 7,
    "challenge code: bank POST challenge_step": 11,
    "challenge page: bank POST challenge": 12,
}


def test_every_bank_page_and_endpoint_stays_under_its_ceiling(world, customer, person):  # noqa: F811
    biller = world["biller"]
    with recording() as log:
        page_queries.card_up_to_the_bank(log, person, biller)
    problems = over_ceilings(log, CEILINGS, parties=("bank",))
    assert not problems, "\n".join(problems)
