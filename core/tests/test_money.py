import pytest

from core.money import inr, inr_short


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.00"),
        (999, "999.00"),
        (1000, "1,000.00"),
        (123456, "1,23,456.00"),
        (1234567.891, "12,34,567.89"),
        (-98765432.1, "-9,87,65,432.10"),
        ("320.66", "320.66"),
        (None, "—"),
        ("x", "—"),
        (100000000, "10,00,00,000.00"),
    ],
)
def test_inr_groups_in_lakhs_and_crores(value, text):
    assert inr(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(12500000, "1.25 Cr"), (450000, "4.50 L"), (99999, "99,999.00"), (-2500000, "-25.00 L")]
)
def test_inr_short(value, text):
    assert inr_short(value) == text
