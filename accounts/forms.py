from __future__ import annotations

from allauth.account.adapter import get_adapter
from allauth.account.forms import ChangePasswordForm
from django import forms

from openalgo_client import netpolicy

from . import services
from .models import TradingAccount

BROKERS = [
    "zerodha",
    "dhan",
    "angel",
    "fyers",
    "upstox",
    "kotak",
    "flattrade",
    "shoonya",
    "aliceblue",
    "fivepaisa",
    "groww",
    "firstock",
    "zebu",
    "iifl",
    "motilal",
    "definedge",
    "paytm",
    "pocketful",
    "tradejini",
    "indmoney",
    "compositedge",
    "wisdom",
    "ibulls",
    "fivepaisaxts",
]


class AccountForm(forms.ModelForm):
    api_key = forms.CharField(
        label="OpenAlgo API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        required=True,
        min_length=16,
        max_length=256,
        help_text="From OpenAlgo → API Key. Stored encrypted; only its last 4 characters are ever shown.",
    )
    send_stored_key = forms.BooleanField(
        label="Send my stored key to the new server",
        required=False,
        help_text="Only when the server moved and the key stays the same; otherwise enter the key again.",
    )

    class Meta:
        model = TradingAccount
        fields = ["name", "host_url", "ws_url", "broker", "is_primary", "is_active"]
        labels = {
            "host_url": "OpenAlgo URL",
            "ws_url": "WebSocket URL",
            "is_primary": "Primary (market data)",
            "is_active": "Active (checked and traded)",
        }
        help_texts = {
            "host_url": "e.g. http://127.0.0.1:5000",
            "ws_url": "e.g. ws://127.0.0.1:8765",
            "broker": "Filled from OpenAlgo's ping when the connection works.",
        }
        widgets = {"broker": forms.TextInput(attrs={"list": "broker-list"})}

    def __init__(self, *args, owner=None, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        # Where the key goes now: validation copies the typed values onto the instance.
        self.saved_servers = {k: getattr(self.instance, k) for k in ("host_url", "ws_url")}
        self.fields["broker"].required = False
        # The key belongs with the server it opens, before the optional fields.
        self.order_fields(
            ["name", "host_url", "ws_url", "api_key", "send_stored_key", "broker", "is_primary", "is_active"]
        )
        if not editing:
            del self.fields["send_stored_key"]
        if editing:
            self.fields["api_key"].required = False
            self.fields[
                "api_key"
            ].help_text = f"The stored key ends in {self.instance.masked_key}. Leave blank to keep it."

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        qs = TradingAccount.objects.filter(owner=self.owner, name=name)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise forms.ValidationError("You already have an account with this name.")
        return name

    def clean_host_url(self):
        return _normalised(netpolicy.normalise_base_url, self.cleaned_data["host_url"])

    def clean_ws_url(self):
        return _normalised(netpolicy.normalise_ws_url, self.cleaned_data["ws_url"])

    def server_moved(self) -> bool:
        """An edit points the account (REST or WebSocket) at another server."""
        d = self.cleaned_data
        return any(k in d and not services.same_server(d[k], saved) for k, saved in self.saved_servers.items())

    def sensitive(self) -> bool:
        """An edit that changes where the key goes, or the key: it needs the password again."""
        return self.instance.pk is not None and (bool(self.cleaned_data.get("api_key")) or self.server_moved())

    def clean(self):
        """One broker account, once: the server and key (the typed key, or the stored one when an
        edit leaves it blank) must not be another account's."""
        d = super().clean()
        host, key = d.get("host_url"), d.get("api_key", "")
        editing = self.instance.pk is not None
        if host and (key or (editing and host != self.instance.host_url)):
            fingerprint = services.account_fingerprint_for(
                host_url=host, api_key=key, account=self.instance if editing else None
            )
            why = services.account_duplicate_of(owner=self.owner, fingerprint=fingerprint, exclude_pk=self.instance.pk)
            if why:
                raise forms.ValidationError(why)
        return d

    def clean_api_key(self):
        key = self.cleaned_data.get("api_key", "").strip()
        if key and not key.isascii():
            raise forms.ValidationError("An OpenAlgo API key is plain ASCII text.")
        return key


def _normalised(normalise, value: str) -> str:
    try:
        return normalise(value)
    except netpolicy.UrlRejected as e:
        raise forms.ValidationError(str(e)) from None


class ConnectionTestForm(forms.Form):
    host_url = forms.CharField(max_length=500)
    api_key = forms.CharField(max_length=256, required=False)
    account_id = forms.IntegerField(required=False)
    send_stored_key = forms.BooleanField(required=False)

    def clean_host_url(self):
        return _normalised(netpolicy.normalise_base_url, self.cleaned_data["host_url"])


class LockedChangePasswordForm(ChangePasswordForm):
    """allauth's password change, with the current password checked like a login (the lockout
    counts its failures and refuses while locked), not by a bare check_password: otherwise a
    session alone could guess the password here far faster than the lockout allows anywhere else."""

    def clean_oldpassword(self) -> str:
        password = self.cleaned_data.get("oldpassword", "")
        if not get_adapter().reauthenticate(self.user, password):
            raise get_adapter().validation_error("enter_current_password")
        return password
