"""Running a learner's Ray Tune search for stage 06's checks: a toy objective, the Tuner's parts, the run, the verdict.

The toy objective stands in for training (no torch: a trial costs a Ray worker and milliseconds), so a check can
run a whole ASHA search in seconds. The run keeps the learner's trainable, search space, metric, mode and scheduler,
and bounds what it costs whatever the answer says: at most :func:`slots_here` trials at once, ``STEPS`` iterations
per trial, :data:`TIME_BUDGET_S` in all.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from kit.course.exercises import NotYetRight

#: Iterations ("steps") of the toy training run: ASHA's max_t.
STEPS = 8
#: What :func:`toy_metrics` reports, and which way is better.
TOY_MODES = {"accuracy": "max", "loss": "min"}
#: The trials a check runs at most (each is a Ray actor and a few seconds on a loaded machine).
MIN_SAMPLES, MAX_SAMPLES = 4, 16
#: The whole search's wall-clock bound (Tune's ``time_budget_s``).
TIME_BUDGET_S = 60
#: The seed of the sampler in a check's run: the same configurations each time.
SEED = 0


def toy_metrics(config: dict, step: int) -> dict[str, float]:
    """A made-up training run's metrics after ``step`` steps, from ``config["lr"]`` and ``config["hidden"]``.

    Accuracy rises (and loss falls) with each step, faster and higher the nearer ``lr`` is to 1e-2 in decades
    and the wider the model; deterministic, so two runs of a search agree.
    """
    lr, hidden = float(config["lr"]), int(config["hidden"])
    decades = abs(math.log10(lr) + 2)  # how many orders of magnitude from the best rate
    ceiling = max(0.3, 0.97 - 0.2 * decades**2 - 2.0 / hidden)
    accuracy = 0.1 + (ceiling - 0.1) * (1 - math.exp(-0.8 * step / (1 + 2 * decades)))
    return {"accuracy": round(accuracy, 4), "loss": round(-math.log(accuracy), 4)}


def short(value: Any) -> str:
    """A value for a hint: its repr, cut to one short line."""
    text = repr(value).splitlines()[0] if repr(value) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def slots_here() -> int | None:
    """Trials at once on this machine (None on a remote cluster): :func:`kit.train.tune.trial_slots`."""
    from kit.train.tune import trial_slots

    return trial_slots().count


@dataclasses.dataclass(frozen=True)
class Parts:
    """What a ``Tuner`` was built from: the check runs these, not the learner's Tuner object."""

    trainable: Any
    param_space: dict
    tune_config: Any  # ray.tune.TuneConfig


def parts(tuner: Any) -> Parts:
    """The trainable, search space and TuneConfig of ``tuner`` (a ``ray.tune.Tuner`` not yet fitted)."""
    from ray import tune

    if isinstance(tuner, tune.ResultGrid):
        raise NotYetRight("that is a ResultGrid: you called fit(); pass the Tuner itself, the check runs it")
    if not isinstance(tuner, tune.Tuner):
        raise NotYetRight(f"expected a ray.tune.Tuner, got {short(tuner)}")
    internal = getattr(tuner, "_local_tuner", None)
    if internal is None:
        raise NotYetRight("this Tuner was built on a remote Ray (Ray Client), where the check cannot look inside "
                          "it: run this exercise with PROFILE='local'")
    return Parts(internal._trainable, dict(internal._param_space or {}), internal._tune_config)


def metric_and_mode(tune_config: Any) -> tuple[str | None, str | None]:
    """The metric and mode a search compares: TuneConfig's, else the scheduler's."""
    scheduler = tune_config.scheduler
    return (tune_config.metric or getattr(scheduler, "metric", None),
            tune_config.mode or getattr(scheduler, "_mode", None))


def check_config(parts: Parts) -> None:
    """Everything that can be judged before running: space, metric and mode, ASHA's rungs, trials, concurrency."""
    from ray.tune.schedulers import AsyncHyperBandScheduler
    from ray.tune.search.sample import Domain

    missing = sorted({"lr", "hidden"} - set(parts.param_space))
    if missing:
        raise NotYetRight(f"param_space has no {missing}: toy_metrics reads config['lr'] and config['hidden'] "
                          "(reuse `space` from exercise 06.1)")
    if not any(isinstance(value, Domain) for value in parts.param_space.values()):
        raise NotYetRight("param_space holds fixed values only: every trial would be the same; use `space`")
    config, scheduler = parts.tune_config, parts.tune_config.scheduler
    if config.metric and getattr(scheduler, "metric", None):
        raise NotYetRight("the metric is set in both TuneConfig and the scheduler, and Tune refuses that: "
                          "set metric and mode once, in TuneConfig")
    metric, mode = metric_and_mode(config)
    if not metric:
        raise NotYetRight("no metric: set TuneConfig(metric=..., mode=...) - which reported value to compare")
    if mode not in ("min", "max"):
        raise NotYetRight(f"mode={mode!r}: say whether a bigger {metric} is better (mode='max') or worse ('min')")
    if metric in TOY_MODES and mode != TOY_MODES[metric]:
        raise NotYetRight(f"mode={mode!r} for {metric}: the search would rank the worst trials first and ASHA "
                          f"would stop the best ones (use mode={TOY_MODES[metric]!r})")
    if scheduler is None:
        raise NotYetRight(f"no scheduler: every trial runs all {STEPS} steps; pass scheduler=ASHAScheduler(...)")
    if not isinstance(scheduler, AsyncHyperBandScheduler):
        raise NotYetRight(f"the scheduler is {type(scheduler).__name__}: this exercise asks for ASHAScheduler")
    rungs = sorted(milestone for milestone, _ in scheduler._brackets[0]._rungs if milestone < scheduler._max_t)
    if scheduler._max_t != STEPS:
        raise NotYetRight(f"max_t={scheduler._max_t} but the toy run reports {STEPS} steps: max_t is the longest "
                          "a trial runs, in reported iterations")
    if not rungs:
        raise NotYetRight(f"grace_period={scheduler._max_t} equals max_t: every trial runs to the end, ASHA never "
                          "stops one early")
    if not MIN_SAMPLES <= config.num_samples <= MAX_SAMPLES:
        raise NotYetRight(f"num_samples={config.num_samples}: run {MIN_SAMPLES} to {MAX_SAMPLES} trials (fewer "
                          "leaves ASHA nothing to compare, more takes too long here)")
    if config.search_alg is not None:
        raise NotYetRight("leave search_alg unset: Tune's default samples the space at random")
    cap, here = config.max_concurrent_trials, slots_here()
    if cap is None:
        raise NotYetRight("max_concurrent_trials is not set: Tune would start one trial per CPU, and each trial is "
                          "a process with its own memory; cap it at slots.count")
    if here is not None and cap > here:
        raise NotYetRight(f"max_concurrent_trials={cap}, but this machine holds {here} trial(s) at once "
                          "(slots.count): a real search would run out of memory")


def run(parts: Parts, stateful: bool = False, cap_from: str = "your max_concurrent_trials") -> str:
    """Fit a Tuner rebuilt from ``parts`` on the local Ray, bounded, and judge it; the summary to print.

    ``stateful``: the trainable is a class whose steps must differ (it keeps state); ``cap_from`` says whose
    ``max_concurrent_trials`` set the cap."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from kit.machine import local_ray, ray_cluster

    local_ray.start()
    metric, mode = metric_and_mode(parts.tune_config)
    cap = min(filter(None, (parts.tune_config.max_concurrent_trials, slots_here(), MAX_SAMPLES)))
    config = dataclasses.replace(
        parts.tune_config, max_concurrent_trials=None, time_budget_s=TIME_BUDGET_S,
        # the cap goes to the generator: Tune ignores max_concurrent_trials beside a BasicVariantGenerator
        search_alg=BasicVariantGenerator(random_state=SEED, max_concurrent=cap),
        reuse_actors=True,  # the next trial runs in the same actor (a class trainable's reset_config says it can)
    )
    tuner = tune.Tuner(parts.trainable, param_space=parts.param_space, tune_config=config,
                       run_config=tune.RunConfig(name=f"kit-06-{time.strftime('%Y%m%d-%H%M%S')}", verbose=0,
                                                 storage_path=str(ray_cluster.shared_dir("ray_results")),
                                                 stop={"training_iteration": STEPS},
                                                 # a class would have to implement save_checkpoint() otherwise
                                                 checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)))
    began = time.time()
    try:
        grid = tuner.fit()
    except Exception as error:  # Tune's own refusals
        if "did not include the specified metric" in str(error):
            raise NotYetRight(f"the search compares {metric!r}, but the trials' reports do not include it: compare "
                              "a name your tune.report({...}) holds (toy_metrics has 'accuracy' and 'loss')") from None
        raise NotYetRight(f"tuner.fit() failed: {type(error).__name__}: {first_line(error)}") from None
    results = [grid[i] for i in range(len(grid))]
    failed = [r.error for r in results if r.error]
    if failed:
        raise NotYetRight(f"{len(failed)} of {len(results)} trial(s) failed; the first: {first_line(failed[0])}")
    histories = [[] if r.metrics_dataframe is None else r.metrics_dataframe.to_dict("records") for r in results]
    time_attr = getattr(parts.tune_config.scheduler, "_time_attr", "training_iteration")
    summary = judge(histories, metric or "", mode or "", STEPS, time_attr, stateful)
    here = slots_here()
    within = f", within this machine's {here} slot(s)" if here is not None else ""
    return (f"   Ran {len(results)} trials in {time.time() - began:.0f} s, at most {cap} at once ({cap_from}"
            f"{within}); {summary}")


def first_line(error: BaseException | str) -> str:
    """The last non-empty line of an error's text (a trial's traceback ends with the exception)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return short(lines[-1]) if lines else type(error).__name__


def judge(histories: list[list[dict]], metric: str, mode: str, max_t: int,
          time_attr: str = "training_iteration", stateful: bool = False) -> str:
    """What the trials reported, checked: the metric, a report per step, the direction, ASHA's early stops."""
    if not histories:
        raise NotYetRight("no trial ran")
    if any(not history for history in histories):
        raise NotYetRight("a trial reported nothing: call tune.report({...}) once per step, inside the loop")
    keys = set().union(*(row for history in histories for row in history))
    reported = sorted(key for key in keys - _AUTO if not key.startswith("config/"))
    if metric not in reported:
        raise NotYetRight(f"the search compares {metric!r}, but the trials report {reported}: "
                          "use one of the names your trainable reports")
    if time_attr not in histories[0][0]:
        raise NotYetRight(f"ASHA counts {time_attr!r}, which the trials do not report: leave time_attr at its "
                          "default (training_iteration counts the reports)")
    steps = [len(history) for history in histories]
    if max(steps) == 1:
        raise NotYetRight("each trial reported once: report inside the loop, after every step - ASHA can only stop "
                          "a trial that says how it is doing while it runs")
    curves = [[row[metric] for row in history] for history in histories if len(history) > 1]
    if stateful and all(len(set(curve)) == 1 for curve in curves):
        raise NotYetRight("every step of a trial reported the same value: step() starts over each call; keep the "
                          "step count on self (setup() runs once per trial, in the trial's actor)")
    rising = sum(curve[-1] > curve[0] for curve in curves)
    falling = sum(curve[-1] < curve[0] for curve in curves)
    if (mode == "max" and falling > rising) or (mode == "min" and rising > falling):
        raise NotYetRight(f"{metric} {'falls' if falling > rising else 'rises'} as the trials train, but "
                          f"mode={mode!r}: the search would prefer the worst trials; swap the mode")
    stopped = sum(n < max_t for n in steps)
    if not stopped:
        raise NotYetRight(f"no trial stopped early: all ran {max_t} steps - does the scheduler get the metric, "
                          "and is grace_period below max_t?")
    best = max if mode == "max" else min
    return (f"steps run per trial {steps}: ASHA stopped {stopped} of {len(steps)} early; best {metric} "
            f"{best(row[metric] for history in histories for row in history):.3f}")


#: Keys Tune adds to every report: not the trainable's metrics.
_AUTO = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "trial_id", "date", "hostname",
         "node_ip", "pid", "done", "time_since_restore", "iterations_since_restore", "checkpoint_dir_name",
         "should_checkpoint", "config", "experiment_tag", "timesteps_total", "episodes_total",
         "timesteps_since_restore", "episode_reward_mean"}
