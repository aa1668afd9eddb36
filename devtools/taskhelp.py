"""``invoke --help <task>`` lines that show every option's type and default, generated from the task's signature.

invoke prints a value placeholder only for ``str`` and ``int`` options (a ``float`` option looks like a switch)
and never prints a default, so :func:`documented_task` appends ``(float, default 8.0)`` to each help text from the
function's own signature: the defaults are written once, in the code that uses them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from invoke import task

TYPE_NAMES = {bool: "switch", int: "integer", float: "number", str: "text"}


def describe_default(kind: type, default: Any) -> str:
    """``"(number, default 8.0)"`` for one option; ``"(switch, default off)"``; ``"(text, default none)"`` for "".

    ``kind`` is the option's type (``type(default)``; ``str`` for ``None``): ``bool``, ``int``, ``float``, ``str``.
    """
    if kind is bool:
        return f"(switch, default {'on' if default else 'off'})"
    shown = "none" if default in ("", None) else default
    return f"({TYPE_NAMES.get(kind, kind.__name__)}, default {shown})"


def option_help(func: Callable[..., Any], texts: Mapping[str, str]) -> dict[str, str]:
    """The ``help=`` mapping for ``@task``: each text from ``texts`` plus its type and default from ``func``.

    ``texts`` maps parameter name → what the option means (with its unit). Raises ValueError naming the options
    that have no text or a text for no option, so a new parameter cannot go undocumented.
    """
    params = {
        name: param
        for name, param in list(inspect.signature(func).parameters.items())[1:]  # the first one is the Context
        if param.default is not inspect.Parameter.empty
    }
    missing, unknown = sorted(set(params) - set(texts)), sorted(set(texts) - set(params))
    if missing or unknown:
        raise ValueError(f"{func.__name__}: options without help {missing}, help without option {unknown}")
    built = {}
    for name, param in params.items():
        kind = str if param.default is None else type(param.default)
        built[name] = f"{texts[name]} {describe_default(kind, param.default)}"
    return built


def documented_task(help: Mapping[str, str], **task_options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@task(help=…, **task_options)`` with every option's type and default appended (see :func:`option_help`)."""

    def decorate(func: Callable[..., Any]) -> Any:
        return task(help=option_help(func, help), **task_options)(func)

    return decorate
