"""http_guard.py builds on waitress's internals (its channel's buffers and clocks, its server's
loop and maintenance), so waitress is pinned below its next major version, and this fails loudly,
naming what moved, if a release within the pin changes them. (The guard's behaviour against
slow and non-reading clients: tests/serving/test_hostile_requests.py.)"""

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import waitress
import waitress.channel
import waitress.parser
import waitress.server

from facegan.serving.http_guard import GuardedChannel, GuardedServer

ROOT = Path(__file__).resolve().parents[2]

# What the guard overrides (a method it calls super() on) and reads or sets on waitress's objects.
OVERRIDDEN = {
    waitress.channel.HTTPChannel: ["received", "write_soon", "handle_write"],
    waitress.server.TcpWSGIServer: [
        "run",
        "pull_trigger",
        "set_socket_options",
        "readable",
        "handle_accept",
        "maintenance",
    ],
}
ATTRIBUTES = {
    waitress.channel: ["total_outbufs_len", "requests", "request", "last_activity", "will_close", "addr"],
    waitress.parser: ["headers_finished"],
    waitress.server: ["_map", "active_channels", "next_channel_cleanup", "accepting", "channel_class"],
}


def test_waitress_is_pinned_below_its_next_major_and_installed_within_it():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [d for d in extras["tf"] if d.startswith("waitress")]  # the server's extra
    low, high = re.fullmatch(r"waitress>=(\d+)\.\d+,<(\d+)", pin).groups()
    assert int(high) == int(low) + 1, pin
    assert int(version("waitress").split(".")[0]) == int(low), version("waitress")


def test_the_methods_the_guard_overrides_are_still_waitress_methods_with_the_same_parameters():
    for base, methods in OVERRIDDEN.items():
        ours = GuardedChannel if issubclass(GuardedChannel, base) else GuardedServer
        for name in methods:
            theirs = getattr(base, name, None)
            assert callable(theirs), f"waitress {waitress.__name__}: {base.__name__}.{name} is gone"
            assert list(inspect.signature(theirs).parameters) == list(
                inspect.signature(getattr(ours, name)).parameters
            ), f"{base.__name__}.{name}'s parameters changed"


def test_the_attributes_the_guard_reads_are_still_set_by_waitress():
    for module, names in ATTRIBUTES.items():
        source = inspect.getsource(module)
        for name in names:
            assert re.search(rf"\b(self|request)\.{name}\b|\b{name}\s*=", source), f"{module.__name__}: {name} is gone"
    adjustments = inspect.getsource(waitress.adjustments)
    for name in ("cleanup_interval", "connection_limit", "channel_timeout"):
        assert re.search(rf"\b{name}\b", adjustments), f"waitress.adjustments: {name} is gone"
    assert issubclass(waitress.channel.ClientDisconnected, Exception)
