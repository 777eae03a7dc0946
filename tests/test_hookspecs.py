"""Meta-tests: every hook is documented in the contract and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

from hwdaemon import hookspecs

HOOKS = [name for name, value in vars(hookspecs).items() if name.startswith("hwdaemon_") and callable(value)]
TESTS = "\n".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
# Registration hooks are exercised wherever a built-in or test plugin registers a piece.
EXERCISED_BY = {
    "hwdaemon_register_steps": "test_a_plugin_step_is_usable_from_a_profile",
    "hwdaemon_register_detectors": "test_plugins_command_lists_builtins_and_what_they_register",
    "hwdaemon_register_recognizers": "test_known_cer_and_wer_per_group",
    "hwdaemon_register_postprocessors": "test_plugins_command_lists_builtins_and_what_they_register",
    "hwdaemon_register_sinks": "test_third_party_sink_installed_with_pip_receives_results",
    "hwdaemon_job_done": "test_hook_hwdaemon_job_done_and_hwdaemon_job_failed",
    "hwdaemon_job_failed": "test_hook_hwdaemon_job_done_and_hwdaemon_job_failed",
}


def test_every_hook_has_a_docstring_and_typed_signature() -> None:
    assert HOOKS
    for name in HOOKS:
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__.split()) > 8, name
        assert inspect.signature(function).return_annotation is not inspect.Signature.empty, name


def test_every_hook_is_exercised_by_a_named_test() -> None:
    assert set(HOOKS) == set(EXERCISED_BY)
    for name, test in EXERCISED_BY.items():
        assert f"def {test}(" in TESTS, f"{name}: no {test}"


def test_every_hook_is_in_the_plugin_docs() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    assert all(f"`{name}(" in docs for name in HOOKS)
