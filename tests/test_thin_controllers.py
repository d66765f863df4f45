"""Controllers stay thin: they call a service's verbs and never hand its database session to helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTROLLERS = (
    "events_app/domain/registrations/controllers.py",
    "events_app/domain/events/manage_controllers.py",
)
#: Calls still given a session, until their area has a service to hold the verb (the certificate
#: helpers live in attendance, whose module imports the registration service: a verb there would be
#: an import cycle).
NOT_YET = {"certificate_available"}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else "?"


@pytest.mark.parametrize("path", CONTROLLERS)
def test_controllers_pass_no_session_to_helpers(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    offenders = [
        f"{path}:{node.lineno} {_name(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _name(node) not in NOT_YET
        and any(
            isinstance(argument, ast.Attribute) and argument.attr == "session"
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]
        )
    ]
    assert offenders == []
