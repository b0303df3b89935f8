"""The FastAGI gate: Asterisk asks whether a call may go out, the ledger answers.

`GateServer` is the daemon's FastAGI server; `coobill.agi.stdio` is the local `AGI(coobill-agi)`
entry point that relays to it.
"""

from coobill.agi.server import GateOptions, GateServer

__all__ = ["GateOptions", "GateServer"]
