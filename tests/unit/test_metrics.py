import pytest

from evals.metrics import exact_match, f1_score, normalize_answer


@pytest.mark.parametrize(
    "pred, gold, em, f1",
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),
        ("October 1922", "October 1922", 1.0, 1.0),
        ("in October 1922", "October 1922", 0.0, 0.8),
        ("yes", "no", 0.0, 0.0),
        ("yes it is", "yes", 0.0, 0.0),  # yes/no/noanswer must match exactly
        ("", "Paris", 0.0, 0.0),
        (None, "Paris", 0.0, 0.0),
        ("a", "the", 1.0, 0.0),  # both normalise to empty: EM 1, F1 0 (official script)
    ],
)
def test_official_behaviour(pred, gold, em, f1):
    assert exact_match(pred, gold) == em
    assert f1_score(pred, gold) == pytest.approx(f1)


def test_normalize():
    assert normalize_answer("  The  Beatles, an English band. ") == "beatles english band"
