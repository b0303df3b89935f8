"""The AGI wire format: environment blocks, replies, quoting, and what the gate writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coobill.agi.gate import (
    call_from_environment,
    channel_variables,
    decision_line,
    enforceable,
    gate_commands,
)
from coobill.agi.protocol import (
    ProtocolError,
    format_environment,
    is_dead_safe,
    parse_environment,
    parse_environment_block,
    parse_reply,
    quote,
    reply_code,
    route_of,
    set_variable,
)
from coobill.errors import BadRequest
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from tests.fakes.asterisk_agi import AsteriskChannel, parse_agi_args

GOOD_ENV = {
    "agi_network": "yes",
    "agi_network_script": "authorize",
    "agi_uniqueid": "1795610072.0",
    "agi_channel": "PJSIP/100-00000000",
    "agi_callerid": "100",
    "agi_calleridname": "Alice",
    "agi_extension": "9138000001",
    "agi_arg_1": "100",
    "agi_arg_2": "9138000001",
}


class TestEnvironment:
    def test_values_keep_their_colons_and_an_empty_value_stays_empty(self) -> None:
        env = parse_environment(
            ["agi_request: agi://127.0.0.1:14573/authorize", "agi_accountcode: ", "agi_x:"]
        )
        assert env == {
            "agi_request": "agi://127.0.0.1:14573/authorize",
            "agi_accountcode": "",
            "agi_x": "",
        }

    def test_lines_without_a_colon_and_space_are_ignored(self) -> None:
        assert parse_environment(["garbage", "agi_type: PJSIP", "a:b"]) == {"agi_type": "PJSIP"}

    @given(st.lists(st.text(alphabet="a_: x\t", max_size=12), max_size=8))
    def test_a_block_is_parsed_as_its_lines_are(self, lines: list[str]) -> None:
        assert parse_environment_block("\n".join(lines)) == parse_environment(lines)

    def test_a_block_ends_with_one_blank_line(self) -> None:
        assert format_environment([("agi_network", "yes")]) == b"agi_network: yes\n\n"

    def test_a_value_with_a_line_break_is_refused(self) -> None:
        with pytest.raises(ValueError):
            format_environment([("agi_arg_1", "1\n2")])

    def test_the_route_drops_a_query_string(self) -> None:
        assert route_of({"agi_network_script": "authorize?acct=42"}) == "authorize"
        assert route_of({}) == ""


class TestReplies:
    def test_a_success_reply_carries_its_result_and_data(self) -> None:
        reply = parse_reply(["200 result=1 (some value)"])
        assert (reply.ok, reply.result, reply.data) == (True, 1, "some value")

    def test_a_multi_line_usage_reply_says_more_lines_follow(self) -> None:
        assert reply_code("520-Invalid command syntax.  Proper usage follows:") == (520, True)
        assert reply_code("520 End of proper usage.") == (520, False)

    def test_a_line_without_a_code_is_not_a_reply(self) -> None:
        with pytest.raises(ProtocolError):
            reply_code("HANGUP")

    def test_set_variable_and_exec_survive_a_dead_channel_but_answer_does_not(self) -> None:
        assert is_dead_safe('SET VARIABLE X "1"')
        assert is_dead_safe('EXEC Set "TIMEOUT(absolute)=90"')
        assert not is_dead_safe("ANSWER")


class TestQuoting:
    def test_a_set_variable_command_is_four_tokens(self) -> None:
        assert set_variable("COOBILL_LIMIT", "") == 'SET VARIABLE COOBILL_LIMIT ""'
        assert parse_agi_args(set_variable("COOBILL_LIMIT", "")) == [
            "SET", "VARIABLE", "COOBILL_LIMIT", ""
        ]

    def test_quotes_and_backslashes_are_escaped(self) -> None:
        assert quote('a"b\\c') == '"a\\"b\\\\c"'

    @given(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                          blacklist_characters="\r\n")))
    def test_any_one_line_value_reaches_asterisk_unchanged(self, value: str) -> None:
        assert parse_agi_args(set_variable("V", value))[2:] == ["V", value]

    def test_a_variable_name_cannot_smuggle_a_second_token(self) -> None:
        with pytest.raises(ValueError):
            set_variable("A B", "x")


class TestRequests:
    def test_a_good_request_becomes_an_authorize_call(self) -> None:
        assert call_from_environment(GOOD_ENV) == AuthorizeCall(
            "1795610072.0", "100", "9138000001", "PJSIP/100-00000000", "Alice"
        )

    def test_the_optional_third_argument_is_the_trunk_it_will_dial(self) -> None:
        assert call_from_environment({**GOOD_ENV, "agi_arg_3": "carrier-a"}).trunk == "carrier-a"
        assert call_from_environment({**GOOD_ENV, "agi_arg_3": ""}).trunk == ""

    def test_an_unknown_caller_name_is_no_caller_name(self) -> None:
        call = call_from_environment({**GOOD_ENV, "agi_calleridname": "unknown"})
        assert call.caller_name == ""

    @pytest.mark.parametrize(
        "change",
        [
            {"agi_network_script": "billing"},
            {"agi_network_script": ""},
            {"agi_uniqueid": ""},
            {"agi_arg_1": "101"},  # not the channel's endpoint
            {"agi_arg_1": "10a"},
            {"agi_arg_2": "+4930", "agi_extension": "+4930"},
            # Arabic-Indic digits are digits to str.isdigit, not to us
            {"agi_arg_2": "١٢٣", "agi_extension": "١٢٣"},
            {"agi_arg_2": "9138000002"},  # not agi_extension
            {"agi_arg_3": "trunk", "agi_arg_4": "9138000001"},  # nothing after the trunk
            {"agi_arg_4": ""},
            {"agi_arg_3": "two words"},  # not an endpoint name
            {"agi_arg_3": "x" * 65},
            {"agi_channel": ""},
        ],
    )
    def test_a_request_with_a_bad_field_is_a_bad_request(self, change: dict[str, str]) -> None:
        with pytest.raises(BadRequest):
            call_from_environment({**GOOD_ENV, **change})

    def test_a_request_without_its_second_argument_is_a_bad_request(self) -> None:
        env = dict(GOOD_ENV)
        del env["agi_arg_2"]
        with pytest.raises(BadRequest):
            call_from_environment(env)


class TestAnswers:
    def test_a_limited_allow_sets_the_limit_and_the_backstop_before_it_says_allow(self) -> None:
        verdict = Verdict(allowed=True, reason=Reason.OK, limit_seconds=30)
        assert gate_commands(verdict, ring_allowance_seconds=60) == [
            'SET VARIABLE COOBILL_LIMIT "30"',
            'SET VARIABLE COOBILL_DIAL_OPTIONS "L(30000)"',
            'EXEC Set "TIMEOUT(absolute)=90"',
            'SET VARIABLE COOBILL_REASON "ok"',
            'SET VARIABLE COOBILL_RESULT "ALLOW"',
        ]

    @pytest.mark.parametrize("limit", [30, None])
    def test_a_conversation_cut_anywhere_never_leaves_an_allow_without_its_limit(
        self, limit: int | None
    ) -> None:
        """The daemon killed, or the connection lost, after any number of commands: the
        channel holds no verdict (the dialplan denies), or the ALLOW with every limit set."""
        verdict = Verdict(allowed=True, reason=Reason.OK, limit_seconds=limit)
        commands = gate_commands(verdict, ring_allowance_seconds=60)
        for cut in range(len(commands) + 1):
            channel = AsteriskChannel()
            for command in commands[:cut]:
                channel.answer(command)
            # the verdict is the last thing said: before it, the channel holds none
            assert ("COOBILL_RESULT" in channel.variables) == (cut == len(commands))

    def test_a_deny_says_so_first(self) -> None:
        assert gate_commands(Verdict.deny(Reason.NO_FUNDS), ring_allowance_seconds=60) == [
            'SET VARIABLE COOBILL_RESULT "DENY"',
            'SET VARIABLE COOBILL_REASON "no_funds"',
            'SET VARIABLE COOBILL_LIMIT ""',
            'SET VARIABLE COOBILL_DIAL_OPTIONS ""',
        ]

    def test_a_long_limit_is_written_as_a_plain_integer(self) -> None:
        verdict = Verdict(allowed=True, reason=Reason.OK, limit_seconds=10**7)
        assert dict(channel_variables(verdict))["COOBILL_DIAL_OPTIONS"] == "L(10000000000)"

    @pytest.mark.parametrize("limit", [0, -5])
    def test_an_allow_without_time_left_is_a_deny_for_no_funds(self, limit: int) -> None:
        verdict = Verdict(allowed=True, reason=Reason.OK, limit_seconds=limit)
        assert enforceable(verdict) == Verdict.deny(Reason.NO_FUNDS)
        assert not any("L(0)" in c for c in gate_commands(verdict, 60))

    def test_a_decision_line_cannot_be_forged_by_wire_values(self) -> None:
        line = decision_line(None, Verdict.deny(Reason.BAD_REQUEST), detail="x verdict=ALLOW\n")
        assert "\n" not in line
        assert line.count("verdict=") == 2
        assert "verdict=DENY" in line
