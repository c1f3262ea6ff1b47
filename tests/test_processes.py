"""``kit.machine.processes``: killing a process group, probing and picking ports."""

from __future__ import annotations

import socket
import subprocess
import time

from kit.machine.processes import LOOPBACK, free_port, kill_process_group, port_is_free


def test_killing_a_group_whose_leader_is_our_child_does_not_wait_for_the_grace_period():
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    began = time.monotonic()
    kill_process_group(leader.pid, grace_s=30, leader=leader)
    assert time.monotonic() - began < 10, "the exited leader (a zombie until reaped) kept the group 'alive'"
    assert leader.returncode is not None


def test_a_group_that_ignores_sigterm_is_killed():
    leader = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"], start_new_session=True)
    time.sleep(0.2)  # let the shell install its trap
    kill_process_group(leader.pid, grace_s=0.5, leader=leader)
    assert leader.wait(timeout=5) == -9


def test_free_port_prefers_the_given_port_and_avoids_a_busy_one():
    port = free_port()
    assert port_is_free(port) and free_port(port) == port
    with socket.socket() as held:
        held.bind((LOOPBACK, port))
        held.listen()
        assert not port_is_free(port)
        assert free_port(port) != port
