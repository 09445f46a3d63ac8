from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

from django import forms

from accounts.choices import TradingState
from accounts.selectors import account_list_tradable

from .models import Order
from .services.validate import SymbolUnknown, instrument_check, last_price, price_band_warnings

if TYPE_CHECKING:
    from accounts.models import TradingAccount

EXCHANGES = ["NSE", "BSE", "NFO", "BFO", "MCX", "CDS"]


class PriceRules(forms.Form):
    """Limit and stop orders need their prices (the order form and the modify form)."""

    def clean(self):
        d = super().clean()
        pt = d.get("pricetype")
        if pt in ("LIMIT", "SL") and not d.get("price"):
            self.add_error("price", "A limit price is required for this order type.")
        if pt in ("SL", "SL-M") and not d.get("trigger_price"):
            self.add_error("trigger_price", "A trigger price is required for stop orders.")
        return d


def one_time_token() -> str:
    """A fresh token for each render of a form that places orders: the same submission posted
    twice carries the same token, and the services make one batch of it."""
    return uuid.uuid4().hex


class TokenField(forms.RegexField):
    """The hidden one-time token. Optional: a submission without one (an old page) is served as
    before, without the duplicate guard."""

    def __init__(self, **kwargs):
        super().__init__(
            regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput, initial=one_time_token, **kwargs
        )


class ClientTokenForm(forms.Form):
    """The token alone: the close-a-position and close-everything buttons."""

    client_token = TokenField()


class SymbolField(forms.RegexField):
    """An OpenAlgo symbol, upper-cased first: "sbin" is SBIN, not a mistake."""

    def to_python(self, value):
        return super().to_python(value).strip().upper()


class AccountChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: TradingAccount) -> str:
        if obj.trading_state == TradingState.ACTIVE:
            return obj.name
        return f"{obj.name} ({obj.get_trading_state_display().lower()}: exits only)"


class OrderForm(PriceRules):
    accounts = AccountChoices(queryset=None, widget=forms.CheckboxSelectMultiple)  # the user's, in __init__
    symbol = SymbolField(
        regex=r"^[A-Z0-9&\-_.]{1,40}$",
        max_length=40,
        error_messages={"invalid": "Use the OpenAlgo symbol, e.g. SBIN or NIFTY01DEC2626000CE."},
    )
    exchange = forms.ChoiceField(choices=[(e, e) for e in EXCHANGES])
    action = forms.ChoiceField(choices=Order.Action.choices)
    quantity = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label="Quantity (units)", help_text="Shares, or units."
    )
    # Lots are the one size that means the same on every account: each account's quantity comes
    # from its own broker's lot size (Zerodha counts MCX in contracts, other brokers in units).
    lots = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        label="Lots (F&O)",
        help_text="Or the number of lots: each account's quantity comes from its broker's lot size.",
    )
    pricetype = forms.ChoiceField(choices=Order.PriceType.choices, initial="MARKET", label="Order type")
    product = forms.ChoiceField(choices=Order.Product.choices, initial="MIS")
    price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    trigger_price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    skip_entries = forms.BooleanField(
        required=False,
        label="Skip halted/reducing accounts for entries",
        help_text="Without it, an order that would open or increase a position on a halted or reducing "
        "account is refused as a whole. Exits (orders that reduce what the account holds) go either way.",
    )
    client_token = TokenField()
    # Shown (and needed) only after a price-band warning: the trader saw it and means the price.
    place_anyway = forms.BooleanField(required=False, label="Place anyway: the price is what I mean")

    def clean(self):
        d = super().clean()
        sized = bool(d.get("quantity")) != bool(d.get("lots"))
        if not sized and "quantity" not in self.errors and "lots" not in self.errors:
            self.add_error("quantity", "Give either a quantity or a number of lots (not both).")
        if not self.errors:
            self._check_before_fan_out(d)
        return d

    def _check_before_fan_out(self, d) -> None:
        """Once, before any account is sent anything: the instrument exists on that exchange
        (one broker's /symbol), and a limit or trigger price far from the last price is confirmed."""
        accounts = list(d["accounts"])
        try:
            self.instrument = instrument_check(accounts=accounts, symbol=d["symbol"], exchange=d["exchange"])
        except SymbolUnknown as e:
            self.add_error("symbol", str(e))
            return
        if d["pricetype"] == "MARKET" or self.instrument is None:
            return
        ltp = last_price(accounts=accounts, symbol=d["symbol"], exchange=d["exchange"])
        self.price_warnings = price_band_warnings(
            pricetype=d["pricetype"], price=d.get("price"), trigger_price=d.get("trigger_price"), ltp=ltp
        )
        if self.price_warnings and not d.get("place_anyway"):
            self.add_error("place_anyway", "Check the price, or tick “Place anyway” and place the order again.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["accounts"].queryset = account_list_tradable(user=user)
        # Filled by clean(): the instrument as a broker knows it, and why the price needs a second look.
        self.instrument = None
        self.price_warnings: list[str] = []

    def batch_token(self) -> str:
        """The batch's client token: the page's one-time token plus a digest of what was asked.
        The same page posted twice is one batch; the same page sent back with other terms (Back,
        change the quantity, submit) is the new order it looks like, not a repeat of the first."""
        d = self.cleaned_data
        if not d.get("client_token"):
            return ""
        terms = [sorted(a.pk for a in d["accounts"])] + [
            str(d.get(k) or "")
            for k in ("symbol", "exchange", "action", "quantity", "lots", "pricetype", "product", "skip_entries")
        ]
        terms += [str(d.get(k) or 0) for k in ("price", "trigger_price")]
        digest = hashlib.sha256(repr(terms).encode()).hexdigest()[:16]
        return f"{d['client_token']}:{digest}"


class ModifyForm(PriceRules):
    pricetype = forms.ChoiceField(choices=Order.PriceType.choices, label="Order type")
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000)
    price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    trigger_price = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)


class TradingStateForm(forms.Form):
    state = forms.ChoiceField(choices=TradingState.choices)
    reason = forms.CharField(required=False, max_length=200)


class RepairForm(forms.Form):
    """The figures the trader saw when deciding: the repair is refused if either has moved."""

    exchange = forms.CharField(max_length=20)
    symbol = forms.CharField(max_length=60)
    product = forms.ChoiceField(choices=Order.Product.choices)
    ours = forms.IntegerField()
    broker = forms.IntegerField()
