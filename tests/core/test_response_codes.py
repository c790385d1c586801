"""The one table of response codes (core.response_codes)."""

from tasdid.core import response_codes as rc

DESIGN_CODES = {"00", "05", "12", "13", "14", "30", "41", "43", "51", "54", "55", "57", "61", "62", "91", "92", "94",
                "96", "N7"}


def test_the_table_holds_the_codes_of_design_section_5_and_cmis_99():
    assert {code for code, row in rc.TABLE.items() if row.on_rails} == DESIGN_CODES
    assert [code for code, row in rc.TABLE.items() if not row.on_rails] == ["99"]


def test_each_row_is_named_after_its_constant_and_has_a_french_meaning():
    for code, row in rc.TABLE.items():
        assert row.code == code
        assert getattr(rc, row.name) == code
        assert row.meaning and row.meaning[0].isupper()


def test_outcomes():
    assert rc.outcome("00") is rc.Outcome.APPROVED
    assert {c for c, row in rc.TABLE.items() if row.outcome is rc.Outcome.RETRY} == {"91", "96"}
    assert {c for c, row in rc.TABLE.items() if row.outcome is rc.Outcome.ERROR} == {"99"}
    assert rc.outcome("N7") is rc.Outcome.DECLINED
    assert rc.lookup("Q1") == rc.ResponseCode("Q1", "", "Code inconnu", rc.Outcome.DECLINED)
    assert rc.is_approved("00") and not rc.is_approved("05") and not rc.is_approved("")
