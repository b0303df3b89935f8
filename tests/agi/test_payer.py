"""Who pays: the endpoint in the channel's name, or the caller ID of a channel without one."""

from __future__ import annotations

import pytest

from coobill.agi.payer import Payer, channel_endpoint, payer_of
from coobill.errors import BadRequest


class TestChannelNames:
    @pytest.mark.parametrize(("channel", "endpoint"), [
        ("PJSIP/100-0000002a", "100"),
        ("PJSIP/office-100-0000002a", "office-100"),  # endpoint ids may contain '-'
        ("pjsip/100-00000000", "100"),
        ("SIP/100-0a1b2c3d", "100"),
        ("IAX2/100-12", "100"),
    ])
    def test_the_endpoint_is_everything_before_the_last_dash(
        self, channel: str, endpoint: str
    ) -> None:
        assert channel_endpoint(channel) == endpoint

    @pytest.mark.parametrize("channel", [
        "Local/90012345678@coobill-outbound-0000001f;2", "DAHDI/1-1", "Message/ast_msg_queue",
    ])
    def test_a_channel_type_without_an_endpoint_has_none(self, channel: str) -> None:
        assert channel_endpoint(channel) is None

    @pytest.mark.parametrize("channel", ["PJSIP/100", "PJSIP/-0000002a", "PJSIP/100-xyz",
                                         "IAX2/100-"])
    def test_an_endpoint_channel_name_of_another_shape_is_a_bad_request(
        self, channel: str
    ) -> None:
        with pytest.raises(BadRequest):
            channel_endpoint(channel)


class TestPayers:
    def test_an_empty_first_argument_on_an_endpoint_channel_is_that_endpoint(self) -> None:
        """chan_sip and chan_iax2 have no CHANNEL(endpoint): the name still says who it is."""
        env = {"agi_channel": "IAX2/100-7", "agi_arg_1": "", "agi_callerid": "200"}
        assert payer_of(env) == Payer("100", "endpoint")

    def test_a_caller_id_is_never_used_when_the_channel_has_an_endpoint(self) -> None:
        env = {"agi_channel": "PJSIP/100-0000002a", "agi_arg_1": "200", "agi_callerid": "200"}
        with pytest.raises(BadRequest):
            payer_of(env)

    def test_a_channel_without_an_endpoint_pays_as_its_caller_id(self) -> None:
        env = {"agi_channel": "Local/9001@x-00000001;2", "agi_arg_1": "", "agi_callerid": "100"}
        assert payer_of(env) == Payer("100", "caller_id")

    def test_an_old_form_first_argument_must_be_the_caller_id_itself(self) -> None:
        env = {"agi_channel": "Local/9001@x-00000001;2", "agi_arg_1": "100",
               "agi_callerid": "100,12345"}
        with pytest.raises(BadRequest):
            payer_of(env)

    def test_an_endpoint_longer_than_an_extension_column_is_a_bad_request(self) -> None:
        with pytest.raises(BadRequest):
            payer_of({"agi_channel": f"PJSIP/{'1' * 33}-00000001", "agi_arg_1": ""})
