"""Ray's error reports in a quiet notebook: one plain sentence, nothing that names the machine."""

from __future__ import annotations

from kit.machine import ray_output

RETRY = ("\x1b[33m(raylet)\x1b[0m Task flaky_divide failed. There are 2 retries remaining, so the task will be "
         "retried. Error: User exception:\n\x1b[36mray::flaky_divide()\x1b[39m (pid=21641, ip=192.0.2.2)\n"
         '  File "/work/main/kit/course/raydemo.py", line 122, in flaky_divide\nConnectionError: attempt 1')
DIED = ("A worker died or was killed while executing a task by an unexpected system error. To troubleshoot the "
        "problem, check the logs for the dead worker. RayTask ID: ffff Worker ID: 83 Node ID: 9a Worker IP "
        "address: 192.0.2.2 Worker port: 36203 Worker PID: 11305 Worker exit type: SYSTEM_ERROR")


def test_a_report_keeps_its_sentence_and_drops_what_names_the_machine():
    assert ray_output.summarize(RETRY) == ("(raylet) Task flaky_divide failed. There are 2 retries remaining, so "
                                           "the task will be retried. Error: User exception:")
    died = ray_output.summarize(DIED)
    assert died.endswith("check the logs for the dead worker.")
    assert "192.0.2.2" not in died and "PID" not in died and "\x1b" not in died
    assert ray_output.summarize("") == ""


def test_quiet_error_messages_prints_the_summary_and_leaves_other_streams_alone(capsys):
    from ray._private import worker

    ray_output.quiet_error_messages()
    ray_output.quiet_error_messages()  # idempotent: wraps Ray's own function once
    worker.print_to_stdstream({"lines": [DIED], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    out = capsys.readouterr().out
    assert out.startswith("(ray) A worker died") and "36203" not in out
