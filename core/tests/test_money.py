from decimal import Decimal

import pytest

from core.money import inr, inr_short, plain, rupees


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


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-1561.25, "−₹1,561.25"),
        ("-1561.25", "−₹1,561.25"),
        (1561.25, "₹1,561.25"),
        (0, "₹0.00"),
        (-0.004, "₹0.00"),  # rounds to nothing: no sign, as on the books page
        (-0.005, "−₹0.01"),
        (-98765432.105, "−₹9,87,65,432.11"),
        (None, "—"),
        ("", "—"),
    ],
)
def test_rupees_puts_a_true_minus_before_the_symbol(value, text):
    assert rupees(value) == text
    assert "₹-" not in rupees(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1000", "1000.00"),
        ("1180.1", "1180.10"),
        ("18.950", "18.95"),
        (2.675, "2.68"),
        (Decimal("-1561.255"), "-1561.26"),
        ("-0.001", "0.00"),
        (1234567.891, "1234567.89"),
        (None, ""),
        ("n/a", ""),
    ],
)
def test_plain_is_two_decimals_for_csv(value, text):
    assert plain(value) == text
