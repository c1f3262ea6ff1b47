"""Exercises of stage 02 (Ray fundamentals). Each check runs the learner's answer on Ray."""

from __future__ import annotations

from typing import Any

from kit.course.exercises import NotYetRight, exercise

_RETRY_KEYS = {"max_retries", "retry_exceptions"}


def _reference_square():
    import ray

    @ray.remote
    def square(x):
        return x * x

    return square


def _reference_counter():
    import ray

    @ray.remote
    class Counter:
        def __init__(self):
            self.count = 0

        def increment(self):
            self.count += 1
            return self.count

    return Counter


def _reference_in_completion_order():
    import ray

    def in_completion_order(refs):
        pending, results = list(refs), []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            results.append(ray.get(ready[0]))
        return results

    return in_completion_order


#: Sleep of each task the completion-order check submits: the first submitted finishes last.
COMPLETION_SLEEPS = (1.0, 0.1, 0.4)


def _node_cpus() -> float:
    """The CPUs of the largest node: a task needs them all on one node, whatever the cluster's total."""
    from kit.machine.ray_cluster import largest_node_cpus

    return largest_node_cpus()


@exercise(
    "02.remote_square",
    "A Ray task: square numbers in parallel",
    "Decorate a plain function with @ray.remote; call it with square.remote(x) and collect with ray.get.",
    reference=_reference_square,
)
def check_remote_square(square) -> None:
    import ray
    from ray.remote_function import RemoteFunction

    if not isinstance(square, RemoteFunction):
        what = "a plain Python function" if callable(square) else type(square).__name__
        raise NotYetRight(f"`square` is {what}, not a Ray remote function: decorate it with @ray.remote")
    try:
        got = ray.get([square.remote(x) for x in range(8)], timeout=60)
    except ray.exceptions.RayTaskError as error:
        raise NotYetRight(f"square raised inside the task: {error.cause!r}") from None
    expected = [x * x for x in range(8)]
    if got != expected:
        raise NotYetRight(f"square.remote(x) for x in 0..7 gave {got}, expected {expected}")


@exercise(
    "02.counter_actor",
    "A Ray actor that keeps state",
    "Decorate a class with @ray.remote; keep the count on self in __init__ and return it from increment().",
    reference=_reference_counter,
)
def check_counter_actor(counter_class) -> None:
    import ray
    from ray.actor import ActorClass

    if not isinstance(counter_class, ActorClass):
        raise NotYetRight("`Counter` is not a Ray actor class: decorate the class with @ray.remote")
    actor: Any = counter_class.remote()
    try:
        if not hasattr(actor, "increment"):
            raise NotYetRight("the actor has no `increment` method")
        got = [ray.get(actor.increment.remote(), timeout=60) for _ in range(3)]
    except ray.exceptions.RayActorError as error:
        raise NotYetRight(f"the actor failed to start: {error}") from None
    except ray.exceptions.RayTaskError as error:
        raise NotYetRight(f"increment() raised: {error.cause!r}") from None
    finally:
        ray.kill(actor)
    if got == [1, 1, 1]:
        raise NotYetRight("three increments returned [1, 1, 1]: keep the count on self, not in a local")
    if got != [1, 2, 3]:
        raise NotYetRight(f"three increments returned {got}, expected [1, 2, 3]")


@exercise(
    "02.one_at_a_time",
    "Resources: let only one heavy task run at a time",
    "Ray starts a task only on a node where its whole resource request fits. Ask for num_cpus so that two "
    "copies cannot fit on the largest node, but one can: ray.nodes() lists each node's Resources. "
    "(ray.cluster_resources() adds up every node: no single node of a cluster has that many CPUs.)",
    reference=lambda: {"num_cpus": _node_cpus()},
)
def check_one_at_a_time(options) -> None:
    from kit.course import raydemo

    if not isinstance(options, dict):
        raise NotYetRight(f"expected a dict for .options(**heavy_options), got {type(options).__name__}")
    unknown = set(options) - {"num_cpus"}
    if "memory" in unknown:
        raise NotYetRight("`memory` is a logical resource too, but this task is CPU-hungry: it keeps every core of a "
                          "node busy, so ask for CPUs (num_cpus); a memory request would not stop two copies "
                          "from sharing the cores")
    if unknown:
        raise NotYetRight(f"only num_cpus is needed here; remove {sorted(unknown)}")
    cpus, largest = options.get("num_cpus"), _node_cpus()
    if not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or cpus <= 0:
        raise NotYetRight(f"num_cpus must be a positive number, got {cpus!r}")
    if cpus > largest:
        raise NotYetRight(
            f"num_cpus={cpus} is more than the largest node's {largest:g} CPUs: the task would be infeasible "
            "and wait forever (Ray warns about it in the log)"
        )
    if cpus <= largest / 2:
        raise NotYetRight(f"with num_cpus={cpus}, {int(largest // cpus)} tasks fit in {largest:g} CPUs of one node "
                          "at once")
    peak = raydemo.max_concurrency_per_node(raydemo.run_with_options(options))
    if peak != 1:
        raise NotYetRight(f"{peak} tasks overlapped on one node with these options")


@exercise(
    "02.retry_options",
    "Failures: make a flaky task succeed",
    "max_retries alone retries only when a worker process dies; an exception raised by your own "
    "code is retried only with retry_exceptions=True. The task fails twice before it succeeds.",
    reference=lambda: {"max_retries": 2, "retry_exceptions": True},
)
def check_retry_options(options) -> None:
    import ray

    from kit.course import raydemo

    if not isinstance(options, dict):
        raise NotYetRight(f"expected a dict for .options(**retry_options), got {type(options).__name__}")
    unknown = set(options) - _RETRY_KEYS
    if unknown:
        raise NotYetRight(f"unknown option(s) {sorted(unknown)}; use {sorted(_RETRY_KEYS)}")
    retries = options.get("max_retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise NotYetRight(f"max_retries must be an int, got {retries!r}")
    if options.get("retry_exceptions") is not True:
        raise NotYetRight(
            "without retry_exceptions=True, Ray does not retry a task that raised an exception "
            "(max_retries covers crashed workers only)"
        )
    if retries == -1:
        raise NotYetRight("max_retries=-1 retries forever: a real bug would then hang your job; bound it")
    if retries < 2:
        raise NotYetRight(f"the task fails twice: max_retries={retries} gives up before the third attempt")
    try:
        result, attempts = raydemo.run_flaky(options)
    except ray.exceptions.RayTaskError as error:
        raise NotYetRight(f"the task still failed: {error.cause!r}") from None
    if result != 0.25:
        raise NotYetRight(f"the task returned {result} after {attempts} attempts")


@exercise(
    "02.completion_order",
    "Stretch: take results as they finish, with ray.wait",
    "ray.get(refs) waits for all and returns them in the order you passed them. ray.wait(pending, num_returns=1) "
    "returns (ready, not_ready) as soon as one is done: loop until nothing is pending, ray.get each ready one.",
    reference=_reference_in_completion_order,
)
def check_completion_order(in_completion_order) -> None:
    import ray

    from kit.course import raydemo

    if not callable(in_completion_order):
        raise NotYetRight(f"`in_completion_order` is a {type(in_completion_order).__name__}; write a function "
                          "in_completion_order(refs) that returns a list of results")
    sleeper: Any = raydemo.Sleeper.remote()  # type: ignore[attr-defined]  # @ray.remote adds .remote
    try:
        refs = [sleeper.sleep.remote(i, s) for i, s in enumerate(COMPLETION_SLEEPS)]
        try:
            got = in_completion_order(list(refs))
        except Exception as error:  # the learner's code may raise anything
            raise NotYetRight(f"in_completion_order(refs) raised {type(error).__name__}: {error}") from None
        finished = ray.get(refs, timeout=raydemo.GET_TIMEOUT_S)
    finally:
        ray.kill(sleeper)
    expected = [r["index"] for r in sorted(finished, key=lambda r: r["end"])]
    if not isinstance(got, list):
        raise NotYetRight(f"in_completion_order(refs) returned a {type(got).__name__}, expected a list of results")
    if got and all(isinstance(item, ray.ObjectRef) for item in got):
        raise NotYetRight("it returned ObjectRefs: ray.wait gives refs that are ready, ray.get turns them into values")
    indices = [item.get("index") if isinstance(item, dict) else item for item in got]
    if indices == list(range(len(refs))) and expected != indices:
        raise NotYetRight(f"the results came in the order the tasks were submitted, {indices}, not the order they "
                          f"finished, {expected}: ray.get(refs) waits for all of them")
    if indices != expected:
        raise NotYetRight(f"got the tasks {indices}; they finished in the order {expected}")
