"""The SSH layer against a real sshd on loopback: commands, timeouts, quoting and host keys."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabfile.core import inventory
from fabfile.core.errors import CommandError, CommandTimeout, ConnectError, HostKeyError
from fabfile.core.ssh import Connector, SSHOptions

from .conftest import Sshd


@pytest.fixture
def connector(sshd: Sshd, tmp_path: Path):
    conn = Connector(inventory.load(sshd.inventory(tmp_path)))
    yield conn
    conn.close()


def test_run_returns_output_and_exit_code(connector: Connector) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    result = session.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_failed_command_names_host_command_and_what_it_said(connector: Connector) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    with pytest.raises(CommandError) as err:
        session.run(["ls", "/no/such/dir"])
    message = str(err.value)
    assert message.startswith("box: `ls /no/such/dir` exited with 2")
    assert "No such file" in message


def test_stdin_is_passed_through(connector: Connector) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    assert session.run(["cat"], stdin=b"abc\x00def").stdout == "abc\x00def"


def test_a_command_that_hangs_is_stopped_at_its_timeout(connector: Connector) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="did not finish in 1s"):
        session.run(["sleep", "31.5"], timeout=0.5)
    assert time.monotonic() - start < 5
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "sleep 31.5"], capture_output=True, check=False)
    assert left.returncode == 1, "the remote command must be stopped too"


def test_one_connection_serves_every_command(connector: Connector) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    for _ in range(5):
        session.run(["true"])
    assert connector.session(connector.inventory.hosts["box"]) is session
    assert connector.counters.connections == 1
    assert connector.counters.commands == 5


NASTY = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
) | st.sampled_from(
    ["; touch /tmp/regtk-pwned", "$(touch /tmp/regtk-pwned)", "`id`", "a\nb", "'\"", " x "]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=NASTY)
def test_values_reach_the_host_verbatim_and_run_nothing(connector: Connector, value: str) -> None:
    session = connector.session(connector.inventory.hosts["box"])
    marker = Path("/tmp/regtk-pwned")
    marker.unlink(missing_ok=True)
    out = session.run(["printf", "%s", value]).stdout
    assert out == value
    script = f'v={shlex.quote(value)}; printf %s "$v"'
    assert session.run(script).stdout == value
    assert not marker.exists()


def test_unknown_host_key_stops_the_host_and_says_how_to_accept(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = inventory.load(sshd.inventory(tmp_path, known_hosts=str(empty)))
    conn = Connector(inv)
    with pytest.raises(HostKeyError) as err:
        conn.session(inv.hosts["box"])
    assert "is unknown" in str(err.value)
    assert "--accept-new-host-keys" in str(err.value)
    assert empty.read_text() == ""


def test_accepting_new_keys_saves_them(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = inventory.load(sshd.inventory(tmp_path, known_hosts=str(empty)))
    conn = Connector(inv, SSHOptions(accept_new_host_keys=True))
    conn.session(inv.hosts["box"]).run(["true"])
    conn.close()
    assert f"[{sshd.address}]:{sshd.port} ssh-ed25519" in empty.read_text()
    again = Connector(inv)
    again.session(inv.hosts["box"]).run(["true"])
    again.close()


def test_changed_host_key_always_stops_the_host(sshd: Sshd, tmp_path: Path) -> None:
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIHs5ZpKcYIqnDsn6n3bSSX0n9rR8l2kUONlKsGH1Y4Wc"
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{sshd.address}]:{sshd.port} ssh-ed25519 {other}\n")
    inv = inventory.load(sshd.inventory(tmp_path, known_hosts=str(wrong)))
    for accept in (False, True):
        conn = Connector(inv, SSHOptions(accept_new_host_keys=accept))
        with pytest.raises(HostKeyError, match="differs from the one in"):
            conn.session(inv.hosts["box"])


def test_a_closed_port_is_a_clear_connect_error(sshd: Sshd, tmp_path: Path) -> None:
    inv = inventory.load(sshd.inventory(tmp_path, address="127.0.5.2", port=1))
    with pytest.raises(ConnectError, match=r"cannot connect to root@127\.0\.5\.2:1"):
        Connector(inv, SSHOptions(connect_timeout=2)).session(inv.hosts["box"])


def test_ssh_config_supplies_name_port_user_and_key(sshd: Sshd, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host boxalias\n"
        f"  HostName {sshd.address}\n"
        f"  Port {sshd.port}\n"
        "  User root\n"
        f"  IdentityFile {sshd.key_file}\n"
    )
    inventory_file = tmp_path / "hosts.yml"
    inventory_file.write_text(
        f"hosts:\n  box:\n    address: boxalias\n    known_hosts: {sshd.known_hosts}\n"
    )
    inv = inventory.load(inventory_file)
    assert inv.hosts["box"].port is None and inv.hosts["box"].user is None
    conn = Connector(inv, SSHOptions(ssh_config=config))
    assert conn.session(inv.hosts["box"]).run(["id", "-un"]).stdout == "root\n"
    conn.close()


def test_an_unreadable_known_hosts_line_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    broken = tmp_path / "known_hosts"
    broken.write_text(f"[{sshd.address}]:{sshd.port} ssh-ed25519 not-base64!!\n")
    inv = inventory.load(sshd.inventory(tmp_path, known_hosts=str(broken)))
    with pytest.raises(ConnectError, match="has a line that cannot be read"):
        Connector(inv).session(inv.hosts["box"])
