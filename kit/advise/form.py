"""A small ipywidgets form for ``kit advise`` in a notebook: a worked example to start from, the fields a
learner or organiser most often changes, and the plan printed below with its reasons (stage 00).

:func:`plan_text` is what the button runs, usable without widgets; a wrong field is shown as the kit's
message and fix, never a traceback.
"""

from __future__ import annotations

from typing import Any

from kit.errors import KitError

#: The fields the form shows, in order, with their labels; everything else comes from the example.
FIELDS: dict[str, str] = {
    "where": "runs on",
    "train_hours": "training budget (h)",
    "serve_rps": "online requests/s",
    "p95_ms": "p95 target (ms)",
    "teams": "teams",
    "nodes": "nodes",
    "node_cpus": "CPUs per node",
    "node_memory_gb": "memory per node (GB)",
    "gpus": "GPUs in all",
}
START = "laptop-learner"


def values_of(example: str) -> dict[str, Any]:
    """The form's values for worked example ``example``: its own where it sets them, else the defaults."""
    from kit.advise import examples
    from kit.advise.workload import Workload

    examples.example(example)  # an unknown name fails here, with the list
    given = examples.EXAMPLES[example][1]
    defaults = Workload()
    return {name: given.get(name, getattr(defaults, name)) for name in FIELDS}


def plan_text(example: str, changes: dict[str, Any]) -> str:
    """The plan for ``example`` with ``changes`` applied, as ``python -m kit advise`` prints it (or why not)."""
    from kit.advise import examples, manifests, report

    try:
        examples.example(example)
        plan, files, fit = manifests.plan_and_manifests({**examples.EXAMPLES[example][1], **changes}, "the form")
    except KitError as error:
        return f"✋ {error.explain()}"
    text = report.as_text(plan, [], fit)
    if files:
        text += (f"\n\n  {sum(len(d) for d in files.values())} manifests validated; "
                 f"`python -m kit advise --example {example} --out DIR` writes them (with your changes as flags)")
    return text


def show(example: str = START) -> Any:
    """Display the form (ipywidgets), starting from worked example ``example``; returns the widget."""
    import ipywidgets as widgets

    from kit.advise import examples
    from kit.advise.workload import PLACES

    chooser = widgets.Dropdown(options=list(examples.EXAMPLES), value=example, description="start from")
    inputs: dict[str, Any] = {}
    for name, label in FIELDS.items():
        if name == "where":
            inputs[name] = widgets.Dropdown(options=list(PLACES), description=label)
        elif name in ("teams", "nodes", "gpus"):
            inputs[name] = widgets.BoundedIntText(min=0, max=10_000, description=label)
        else:
            inputs[name] = widgets.BoundedFloatText(min=0, max=1e9, description=label)
    for box in (chooser, *inputs.values()):
        box.style = {"description_width": "11em"}
    button = widgets.Button(description="Advise", button_style="primary")
    output = widgets.Output()

    def load(_: Any = None) -> None:
        for name, value in values_of(chooser.value).items():
            inputs[name].value = value

    def advise(_: Any = None) -> None:
        start = values_of(chooser.value)
        changes = {name: box.value for name, box in inputs.items() if box.value != start[name]}
        output.clear_output()
        with output:
            print(plan_text(chooser.value, changes))

    chooser.observe(load, names="value")
    button.on_click(advise)
    load()
    form = widgets.VBox([chooser, *inputs.values(), button, output])
    from IPython.display import display

    display(form)
    return form
