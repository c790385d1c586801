"""The hex dumps captured from the running rails (docs/iso8583.md, written by bench/capture_iso_dumps.py) are real
messages of the profile: each decodes with the codec to the message type it states, a request and its answer in
turn, with the same key; and the field lists printed under each dump are those of its bytes."""

import pytest
from bench.capture_iso_dumps import DOC, PAIRS, SECTION, parse, render

from tasdid.core import iso8583 as iso


@pytest.fixture(scope="module")
def section() -> str:
    found = SECTION.search(DOC.read_text())
    assert found, "docs/iso8583.md has no captured section: run bench/capture_iso_dumps.py"
    return found["body"]


def test_there_is_a_dump_of_each_message_type(section):
    assert [mti for mti, _direction, _data in parse(section)] == [mti for pair in PAIRS for mti in pair]


def test_every_dump_decodes_to_its_stated_type(section):
    dumps = parse(section)
    for (mti, direction, data), (answer_mti, answer_direction, answer_data) in zip(dumps[::2], dumps[1::2],
                                                                                    strict=True):
        request, answer = iso.decode_frame(data), iso.decode_frame(answer_data)
        assert (mti, answer_mti) == (request.MTI, answer.MTI)
        assert (direction, answer_direction) == ("gateway → switch", "switch → gateway")
        assert iso.match_key(answer) == iso.match_key(request)
        assert answer.response_code == iso.rc.APPROVED
        assert int.from_bytes(data[:2], "big") == len(data) - 2


def test_the_refund_is_a_refund_and_the_card_a_sandbox_one(section):
    messages = {mti: iso.decode_frame(data) for mti, _direction, data in parse(section)}
    assert messages["0200"].processing_code == iso.REFUND
    from tasdid.bank import sandbox

    assert messages["0100"].pan in {card.number for card in sandbox.CARDS}


def test_the_field_lists_are_those_of_the_bytes(section):
    assert render([(direction, data) for _mti, direction, data in parse(section)]) == section, (
        "run: .venv/bin/python bench/capture_iso_dumps.py")
