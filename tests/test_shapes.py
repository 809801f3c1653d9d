"""core/shapes.py: a JSON value of exactly its declared shape, or the first place it differs, named."""

from __future__ import annotations

import pytest

from tenge_ledger.core.shapes import Either, ListOf, MapOf, Obj, Row, problem

RECORD = Obj({"seq": int, "memo": Either((None, str))}, {"legs": ListOf(Row((str, int)))})


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"seq": "5", "memo": None}, 'seq: "5" is a string, not an integer'),
        ({"seq": True, "memo": None}, "seq: true is a boolean, not an integer"),
        ({"seq": 5.0, "memo": None}, "seq: 5.0 is a number with a fraction, not an integer"),
        ({"seq": 5, "memo": 7}, "memo: 7 is an integer, not null or a string"),
        ({"seq": 5}, 'the key "memo" is missing'),
        ({"seq": 5, "memo": None, "x": 1}, 'unknown key "x"'),
        ({"seq": 5, "memo": None, "legs": [["a", 1], ["b"]]}, "legs[1]: a list of 1, not 2 items"),
        ({"seq": 5, "memo": None, "legs": [["a", 1], ["b", False]]}, "legs[1][1]: false is a boolean"),
        ([], "[] is a list, not an object"),
    ],
)
def test_problem__names_the_first_place_that_differs(value, says) -> None:
    found = problem(value, RECORD)
    assert found is not None and found.startswith(says), found


def test_problem__a_value_of_its_shape_fits() -> None:
    assert problem({"seq": 1, "memo": "x", "legs": [["a", -1]]}, RECORD) is None
    assert problem({"seq": 1, "memo": None}, RECORD) is None
    assert problem({"a": 1, "b": 2}, MapOf(int)) is None
    assert problem({"a": 1, "b": "2"}, MapOf(int)) == 'b: "2" is a string, not an integer'
    assert problem({"anything": 1}, Obj({}, more=True)) is None
