"""Every error the kit raises on purpose derives from KitError and carries its fix."""

from __future__ import annotations

import importlib
import inspect

import pytest

from kit.config.train import ConfigError, TrainConfig
from kit.errors import KitError

#: Modules outside kit/k8s, kit/train and kit/serve that define error classes.
MODULES = ["kit.config.train", "kit.config.profile", "kit.deploy.plan", "kit.course.notebooks",
           "kit.course.exercises", "kit.course.ddpdemo", "kit.machine.ray_cluster", "kit.machine.cgroups"]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_error_class_derives_from_kit_error(module_name):
    module = importlib.import_module(module_name)
    errors = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
              if issubclass(cls, BaseException) and cls.__module__ == module_name]
    assert errors, f"{module_name} defines no error class: drop it from MODULES"
    assert [cls.__name__ for cls in errors if not issubclass(cls, KitError)] == []


def test_a_config_error_names_the_field_and_how_to_fix_it():
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_dict({"epoch": 3})
    assert isinstance(error.value, ValueError) and error.value.field == "epoch"
    assert error.value.explain().splitlines() == [
        f"TrainConfig.epoch: unknown field; known fields: {', '.join(sorted(TrainConfig().to_dict()))}",
        "Fix: remove 'epoch' or correct its spelling"]
    with pytest.raises(ConfigError) as error:
        TrainConfig(model="resnet")
    assert error.value.fix == "use model='mlp' or another of mlp, cnn, recurrent"


def test_a_wrong_exercise_answer_is_an_assertion_error_whose_fix_is_the_hint():
    from kit.course import exercises

    with pytest.raises(AssertionError) as wrong:
        exercises.check("00.cpu_slots", 10_000)
    assert isinstance(wrong.value, exercises.NotYetRight) and isinstance(wrong.value, KitError)
    hint = exercises.get("00.cpu_slots").hint
    assert wrong.value.fix == hint and str(wrong.value).endswith(f"\nHint: {hint}")
    with pytest.raises(KeyError, match="Fix: use one of the known exercises"):
        exercises.get("00.nope")


def test_a_profile_typo_says_which_profiles_exist():
    from kit.config import profile

    with pytest.raises(ValueError) as error:
        profile.resolve("prod")
    assert isinstance(error.value, KitError) and "'local', 'kind', 'cluster'" in error.value.fix
