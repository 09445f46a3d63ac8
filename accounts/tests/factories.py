"""Users and trading accounts for tests.

Accounts are made by `accounts.services.account_create`, as the add page makes them (key encrypted,
first account primary with the data role, audited, a first check queued), never as bare rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import factory
from django.conf import settings

from accounts import services
from accounts.models import TradingAccount

if TYPE_CHECKING:
    from brokersim.testing import Broker

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    """`admin=True` for a superuser (staff too)."""

    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    class Params:
        admin = factory.Trait(is_staff=True, is_superuser=True)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # create_user hashes the password and normalises the email, as signing up does.
        return model_class._default_manager.create_user(*args, **kwargs)


class TradingAccountFactory(factory.Factory):
    """Fields are `account_create`'s keyword arguments. The default host has nothing listening:
    for tests that never reach a broker; `account_on` points an account at brokersim."""

    class Meta:
        model = TradingAccount

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"account-{n}")
    host_url = "http://127.0.0.1:9"
    ws_url = "ws://127.0.0.1:9"
    api_key = factory.Sequence(lambda n: f"k{n:060d}")
    broker = ""

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError("an unsaved TradingAccount has no encrypted key: use create(), which calls account_create")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.account_create(**kwargs)


def account_on(sim: Broker, **kwargs) -> TradingAccount:
    """An account on a brokersim paper account, named after it unless `name` is given."""
    kwargs.setdefault("name", sim.info["name"])
    return TradingAccountFactory(host_url=sim.host, ws_url=sim.ws_url, api_key=sim.api_key, **kwargs)
