"""The extension sync's endpoint listing, against the pjsip lab's recorded answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from coobill.ami import (
    AmiConnection,
    AmiFollower,
    AmiNotConnected,
    Endpoint,
    EndpointListingUnavailable,
    list_endpoints,
    phone_by_pattern,
)
from tests.ami.conftest import Recorder
from tests.fakes.ami_server import EndpointBook, FakeAmiServer, SipPeer

StartServer = Callable[..., Awaitable[FakeAmiServer]]
Follow = Callable[..., Awaitable[tuple[AmiFollower, Recorder]]]

LAB_ENDPOINTS = [
    Endpoint("100", "Alice", True),
    Endpoint("101", "Bob", True),
    Endpoint("102", "Carol Wu", True),
    Endpoint("carrier-a", "", False),
    Endpoint("carrier-b", "", False),
]


async def test_the_lab_pbx_has_three_phones_and_two_trunks(
    ami_server: StartServer, follow: Follow
) -> None:
    """Over the follower's session: 100 Alice, 101 Bob, 102 Carol Wu; carriers are trunks."""
    server = await ami_server(endpoints=EndpointBook.from_pjsip_lab())
    follower, recorder = await follow(server)
    await server.next_login()
    await recorder.until(lambda: len(recorder.reconciled) == 1)
    assert await follower.list_endpoints() == LAB_ENDPOINTS
    asked = [a["action"] for s in server.sessions for a in s.actions]
    # Trunks are not asked for a caller-id name.
    assert asked.count("PJSIPShowEndpoint") == 3


async def test_the_phone_rule_is_configurable(ami_server: StartServer) -> None:
    server = await ami_server(endpoints=EndpointBook.from_pjsip_lab())
    async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
        found = await list_endpoints(ami.request, is_phone=phone_by_pattern(r"^(100|carrier-a)$"))
    assert [(e.name, e.is_phone, e.caller_name) for e in found] == [
        ("100", True, "Alice"), ("101", False, ""), ("102", False, ""),
        ("carrier-a", True, ""), ("carrier-b", False, ""),
    ]


async def test_no_endpoints_is_an_empty_list(ami_server: StartServer) -> None:
    """PJSIPShowEndpoints answers Error "No endpoints found": that means none."""
    server = await ami_server(endpoints=EndpointBook.empty())
    async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
        assert await list_endpoints(ami.request) == []


async def test_without_pjsip_sip_peers_are_listed(ami_server: StartServer) -> None:
    """res_pjsip not loaded (unknown command): chan_sip's SIPpeers / SIPshowpeer instead."""
    server = await ami_server(sip_peers=[SipPeer("200", '"Dan" <200>'), SipPeer("telco")])
    async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
        assert await list_endpoints(ami.request) == [
            Endpoint("200", "Dan", True), Endpoint("telco", "", False)]


async def test_no_listing_at_all_raises_rather_than_returning_none(
    ami_server: StartServer,
) -> None:
    """Neither module (the lab's ami-actions.txt PBX): an error, so a sync deletes nothing."""
    server = await ami_server()
    async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
        with pytest.raises(EndpointListingUnavailable, match="SIPpeers"):
            await list_endpoints(ami.request)


async def test_listing_needs_a_connection(ami_server: StartServer, follow: Follow) -> None:
    server = await ami_server()
    await server.refuse()
    follower, _ = await follow(server)
    with pytest.raises(AmiNotConnected):
        await follower.list_endpoints()


def test_the_default_phone_rule_takes_ascii_digits_only() -> None:
    is_phone = phone_by_pattern()
    assert is_phone("100")
    assert not is_phone("\uff11\uff10\uff10")  # full-width 100: a trunk, not a phone
