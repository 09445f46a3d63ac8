"""An exit that could not be placed ends in "needs attention": every page that shows the order or
its account says so in red, and the dashboard lists the accounts it concerns."""

from __future__ import annotations

import re

import pytest

from accounts.tests.factories import TradingAccountFactory
from trading.models import Order
from trading.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
Status = Order.Status
BADGE = "Exit needs attention"


@pytest.fixture
def stuck(alice):
    """alpha has an exit needing attention (and a filled order); bravo is fine."""
    alpha = TradingAccountFactory(owner=alice, name="alpha")
    bravo = TradingAccountFactory(owner=alice, name="bravo")
    OrderFactory(account=alpha, symbol="INFY", status=Status.COMPLETE)
    order = OrderFactory(
        account=alpha,
        action="SELL",
        quantity=7,
        reduce_only=True,
        status=Status.ATTENTION,
        last_error="exit not placed after 3 tries: broker unreachable",
    )
    OrderFactory(account=bravo, status=Status.COMPLETE)
    return {"alpha": alpha, "bravo": bravo, "order": order}


def attention_url(account) -> str:
    return f"/trading/books/?tab=orders&amp;status=attention&amp;account={account.pk}"


def row(html: str, marker: str) -> str:
    return re.search(rf"<tr[^>]*{marker}.*?</tr>", html, re.S)[0]


def test_the_order_row_is_red_on_the_books_and_the_batch_page(client, alice, stuck):
    client.force_login(alice)
    order = stuck["order"]
    books = client.get("/trading/books/?tab=orders").content.decode()
    tr = row(books, f'data-order="{order.pk}"')
    assert "row-attention" in tr and "status-attention" in tr and "Needs attention" in tr
    assert "broker unreachable" in tr
    assert books.count("row-attention") == 1  # the filled orders are not marked
    batch = client.get(f"/trading/orders/{order.batch_id}/").content.decode()
    tr = row(batch, f'data-order="{order.pk}"')
    assert "row-attention" in tr and "status-attention" in tr
    # The badge's link: the account's orders needing attention, and only those.
    only = client.get(f"/trading/books/?tab=orders&status=attention&account={stuck['alpha'].pk}").content.decode()
    assert only.count("<tr data-order=") == 1 and f'data-order="{order.pk}"' in only


def test_the_account_is_marked_on_the_accounts_list_and_its_dashboard_card(client, alice, stuck):
    client.force_login(alice)
    alpha, bravo = stuck["alpha"], stuck["bravo"]
    for url in ("/accounts/", "/"):
        page = client.get(url).content.decode()
        assert page.count(BADGE) >= 1, url
        badge = re.search(r'<a[^>]*data-attention-account="(\d+)"[^>]*>[^<]*' + BADGE, page)
        assert badge and badge[1] == str(alpha.pk), url
        assert attention_url(alpha) in page, url
        assert f'data-attention-account="{bravo.pk}"' not in page, url


def test_the_dashboard_lists_every_account_with_exits_needing_attention(client, alice, stuck):
    OrderFactory(account=stuck["bravo"], reduce_only=True, status=Status.ATTENTION)
    OrderFactory(account=stuck["bravo"], reduce_only=True, status=Status.ATTENTION)
    client.force_login(alice)
    page = client.get("/").content.decode()
    banner = re.search(r"<section[^>]*data-attention-banner.*?</section>", page, re.S)[0]
    assert "alpha" in banner and "bravo" in banner and "border-rose" in banner
    assert "1 exit" in banner and "2 exits" in banner
    assert attention_url(stuck["alpha"]) in banner and attention_url(stuck["bravo"]) in banner


def test_nothing_is_marked_when_nothing_needs_attention_and_strangers_see_nothing(client, alice, charlie, stuck):
    client.force_login(charlie)
    TradingAccountFactory(owner=charlie, name="charlies")
    for url in ("/", "/accounts/", "/trading/books/?tab=orders"):
        page = client.get(url).content.decode()
        assert BADGE not in page and "data-attention-banner" not in page and "row-attention" not in page, url
        assert "alpha" not in page, url


def test_the_dashboard_reads_attention_in_one_query_whatever_the_number_of_accounts(
    client, alice, stuck, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    client.get("/")
    with CaptureQueriesContext(connection) as small:
        client.get("/")
    for n in range(6):
        OrderFactory(account=TradingAccountFactory(owner=alice, name=f"more-{n}"), status=Status.ATTENTION)
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get("/").content.decode()
    assert page.count("data-attention-account=") == 7
