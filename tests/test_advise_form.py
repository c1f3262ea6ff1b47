"""kit.advise.form: the notebook form runs the same advisor as the command line; wrong input is a message."""

from __future__ import annotations

from kit.advise import examples, form


def test_plan_text_is_the_command_line_plan_with_the_changes_applied():
    text = form.plan_text("hackathon-10-teams", {"teams": 4})
    assert "[launcher]" in text and "4 ClusterQueues" in text and "manifests validated" in text


def test_a_contradiction_is_shown_with_its_fix_not_raised():
    text = form.plan_text("laptop-learner", {"requires_gpu": True})
    assert text.startswith("✋ ") and "Fix:" in text and "Traceback" not in text


def test_the_form_starts_from_an_example_and_reloads_when_another_is_chosen():
    widget = form.show("laptop-learner")
    chooser, *boxes = widget.children[:1 + len(form.FIELDS)]
    by_name = dict(zip(form.FIELDS, boxes, strict=True))
    assert by_name["where"].value == "laptop"
    chooser.value = "hackathon-10-teams"
    wanted = examples.EXAMPLES["hackathon-10-teams"][1]
    assert by_name["where"].value == "cluster" and by_name["teams"].value == wanted["teams"]
    assert by_name["node_cpus"].value == wanted["node_cpus"]
