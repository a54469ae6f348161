"""The harness itself: what the e2e tests start, they clean up."""

from conftest import Stack, auth0_provider


def test_envoy_leaves_no_directory_behind_and_its_log_stays_readable():
    stack = Stack(lambda s: {"providers": {"auth0": auth0_provider(s)}})
    stack.envoy.start()
    workdir = stack.envoy.dir
    assert (workdir / "envoy.yaml").exists()
    stack.stop()
    assert not workdir.exists(), f"{workdir} left behind"
    assert "starting main dispatch loop" in stack.envoy.log()
