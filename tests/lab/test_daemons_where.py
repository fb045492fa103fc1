"""``mip4.lab.daemons.where``: what a daemon that does not answer its control socket is
doing, for the start-up timeout's message (a busy machine or a hung start)."""

from __future__ import annotations

import os
import subprocess
import time

from mip4.lab.daemons import where


def test_a_sleeping_process_is_named_with_its_state_kernel_frames_and_cpu() -> None:
    proc = subprocess.Popen(["sleep", "5"])
    try:
        deadline = time.monotonic() + 5
        said = where(proc.pid)
        while " state S " not in said and time.monotonic() < deadline:
            time.sleep(0.05)
            said = where(proc.pid)
        assert said.startswith(f"pid {proc.pid} state S in "), said
        assert said.endswith("s of CPU"), said
        if os.geteuid() == 0:  # /proc/PID/stack is root's: the sleep's kernel frames
            assert "nanosleep" in said, said
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_is_gone_is_said_to_be_gone() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert where(proc.pid) == f"pid {proc.pid} gone"
