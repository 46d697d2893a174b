"""SEQ| columns decode without eval, with type checks, and encode the way Leginon writes them."""

from __future__ import annotations

import pytest

from semc.base.errors import CorruptInput
from semc.models.codecs import pairs_decode, seq_decode, seq_encode


@pytest.mark.parametrize("text,expected", [("(1151, 1152)", (1151, 1152)), ("()", ()), (None, ()), ("", ()),
                                           ("[0, 1, 2]", (0, 1, 2))])
def test_integer_sequences_decode(text, expected):
    assert seq_decode(text) == expected


def test_float_sequences_accept_integers_and_pairs_decode():
    assert seq_decode("[0.0, 1.5, 2]", item_type=float) == (0.0, 1.5, 2.0)
    assert pairs_decode("((10, 20), (11, 21))") == ((10, 20), (11, 21))


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "(1, 'a')", "5", "(1,", "((1, 2, 3),)",
                                  "(True, 2)"])
def test_code_and_wrong_types_are_refused(text):
    with pytest.raises(CorruptInput):
        seq_decode(text) if "((" not in text else pairs_decode(text)


def test_encoding_round_trips_in_leginon_form():
    assert seq_encode([1151, 1152]) == "(1151, 1152)"
    assert seq_encode([]) == "()"
    assert seq_encode([(10, 20)]) == "((10, 20),)"
    assert seq_encode([0.5, 1.0], as_list=True) == "[0.5, 1.0]"
    assert seq_decode(seq_encode(range(5))) == (0, 1, 2, 3, 4)
