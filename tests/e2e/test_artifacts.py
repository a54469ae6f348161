"""The shipped artifacts: the .wasm stays small, and every Envoy config in envoy/ is valid."""

import subprocess
from pathlib import Path

import pytest

from jwtguard_support import ROOT, WASM, envoy_command

WASM_BUDGET = 1024 * 1024


def test_wasm_size_within_budget():
    size = WASM.stat().st_size
    print(f"\njwt_guard.wasm: {size} bytes ({size / 1024:.0f} KiB of a {WASM_BUDGET // 1024} KiB budget)")
    assert size <= WASM_BUDGET


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "envoy").glob("*.yaml")))
def test_envoy_config_validates(config):
    # Validation also runs the plugin's on_configure, so the embedded jwt-guard JSON is checked.
    r = subprocess.run(envoy_command() + ["--mode", "validate", "-c", f"envoy/{config}", "--use-dynamic-base-id",
                                          "-l", "warning"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"configuration 'envoy/{config}' OK" in r.stdout + r.stderr


def test_validate_mode_refuses_a_bad_plugin_config(tmp_path):
    bad = (ROOT / "envoy" / "envoy.yaml").read_text().replace('"audiences": ["https://api.demo.test"]', '"audiences": []')
    assert bad != (ROOT / "envoy" / "envoy.yaml").read_text()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad)
    r = subprocess.run(envoy_command() + ["--mode", "validate", "-c", str(cfg), "--use-dynamic-base-id", "-l", "warning"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "providers.demo_idp.audiences" in r.stdout + r.stderr


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "envoy").glob("*.yaml")))
def test_shipped_listeners_refuse_underscore_headers(config):
    text = (ROOT / "envoy" / config).read_text()
    assert text.count("http_connection_manager.v3.HttpConnectionManager") == \
        text.count("headers_with_underscores_action: REJECT_REQUEST"), "every listener refuses x_jwt_sub spellings"
