"""Stage 05's measurements of a local Kubeflow job: where its time went, and why it trains at the rate it does.

Every sentence here is chosen from the numbers, so the notebook never states an
expectation that the next run can contradict.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobTimes:
    """Seconds of a local job's phases, from submission to the job's end."""

    install_s: float  # venv + pip install (until pip's "Successfully installed ... torch-")
    startup_s: float  # torchrun, imports and data, until the training loop started
    epochs_s: float  # the epochs (training steps and evaluation), until rank 0 printed its result
    after_s: float  # after the result: the artifact, the processes' exit, the venv's removal, the last poll
    steps_s: float  # of epochs_s, the time in training steps (the epochs' epoch_s)

    @property
    def total_s(self) -> float:
        return self.install_s + self.startup_s + self.epochs_s + self.after_s


def job_times(submitted: float, installed: float | None, result: dict, result_seen: float | None,
              finished: float) -> JobTimes:
    """Split a job's wall time with the marks a polling callback noted (``None``: not seen, use the next mark)."""
    started = result["train_started_unix"]
    installed = installed if installed is not None else started
    result_seen = min(result_seen if result_seen is not None else finished, finished)
    steps = sum(h["epoch_s"] for h in result["history"])
    return JobTimes(installed - submitted, started - installed, max(0.0, result_seen - started),
                    max(0.0, finished - result_seen), steps)


def describe_times(times: JobTimes) -> str:
    """The split as aligned lines, then which phase dominated."""
    parts = {
        "venv + pip install torch": times.install_s,
        "torchrun + imports + data": times.startup_s,
        "epochs (train + evaluate)": times.epochs_s,
        "artifact, exit, venv removal": times.after_s,
    }
    lines = [f"{name:<30} {seconds:6.1f} s" for name, seconds in parts.items()]
    lines.append(f"{'job, submitted to finished':<30} {times.total_s:6.1f} s")
    largest = max(parts, key=lambda name: parts[name])
    lines.append(f"The largest part: {largest}, {parts[largest] / times.total_s:.0%} of the job; "
                 f"the training steps themselves took {times.steps_s:.1f} s.")
    return "\n".join(lines)


def explain_rate(job_rate: float, job_threads: int, kernel_rates: dict[int, float]) -> str:
    """Why the job trained at ``job_rate`` samples/s, from the same configuration timed in this kernel.

    ``kernel_rates`` maps a thread count to the samples/s of the same epoch run here.
    """
    same = kernel_rates.get(job_threads)
    fastest_threads = max(kernel_rates, key=lambda t: kernel_rates[t])
    fastest = kernel_rates[fastest_threads]
    measured = (f"The job trained at {job_rate:,.0f} samples/s with {job_threads} thread(s); in this kernel the same "
                "epoch ran at " + ", ".join(f"{r:,.0f} samples/s with {t} thread(s)" for t, r in
                                            sorted(kernel_rates.items())) + ".")
    if same is not None and fastest_threads != job_threads and fastest >= 3 * same and job_rate < fastest / 3:
        why = (f"The thread count explains it: {job_threads} threads that synchronise inside every small matrix "
               "multiplication wait for each other whenever the machine's cores are busy elsewhere, and this model's "
               "steps are tiny. Stage 03 gave each process one thread. The kit sets OMP_NUM_THREADS to "
               "CPUs / processes; on a quiet machine or a bigger model more threads do help.")
    elif same is not None and job_rate >= same / 2:
        why = ("The job's process trains about as fast as this kernel with the same threads: the local backend costs "
               "start-up time, not training speed.")
    else:
        why = ("The job was slower than this kernel with the same threads: its freshly installed torch and a fresh "
               "process pay one-time costs, and other work on the machine competes for the same cores.")
    return f"{measured} {why}"
