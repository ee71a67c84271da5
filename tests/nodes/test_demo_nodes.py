"""`xinyi demo --nodes` tells the two-node story and its output shows the relay."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.live import ROOT, XINYI, free_port


def two_free_ports() -> int:
    """A port p such that p and p + 1 are both free now."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


def test_the_two_node_demo_shows_the_relay(tmp_path: Path) -> None:
    port = two_free_ports()
    env = {**os.environ, "XINYI_HOME": str(tmp_path), "CI": "true", "PYTHONPATH": str(ROOT)}
    env.pop("XINYI_DATABASE_URL", None)
    out = subprocess.run(
        [*XINYI, "demo", "--nodes", "--port", str(port)],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "relayed to jiangyin: consent" in text
    assert "to 'node:jiangsu/bank-jiangsu'" in text
    assert "tax paid in 12 months >= 1,000,000 CNY: True" in text
    assert '"operation": "relay", "decision": "relayed:jiangyin"' in text
    assert '"institution": "node:jiangsu/bank-jiangsu"' in text
