"""Where the recorded Asterisk traces live: tests/data/asterisk-traces, inside this checkout.

Every fake, replay and benchmark reads them through this module, so a clone with nothing
beside it runs the whole suite. COOBILL_TRACES may point at another copy (a new recording
being tried out); tests/test_self_contained.py checks that, unset, nothing resolves outside
the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
TRACES = Path(os.environ.get("COOBILL_TRACES") or REPOSITORY / "tests" / "data" / "asterisk-traces")
BASIC = TRACES / "lab-23.4.1-basic"
PJSIP = TRACES / "lab-23.4.1-pjsip"
TRANSFER = TRACES / "lab-23.4.1-transfer"
