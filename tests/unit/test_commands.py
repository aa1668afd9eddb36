"""The commands as users meet them: every README command names a real task, session and option and works as
pasted on a machine where pip did not put ``uv`` on PATH; ``invoke --help`` shows each option's type and default;
``nox -l`` shows one whole sentence per session."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import nox.registry
import pytest
from invoke import Collection
from invoke.parser import ParserContext

import noxfile  # noqa: F401  (registers the sessions)
import tasks
from loadtests.runner import parse_args as runner_parse_args

README = Path(__file__).resolve().parents[2] / "README.md"
TASKS = {context.name: context for context in Collection.from_module(tasks).to_contexts()}
SESSIONS = nox.registry.get()
INVOKE_CORE = {"--list", "-l", "--help", "-h"}
NOX_CORE_FLAGS = {"--list", "-l", "-r", "-R", "--no-venv"}
TOOL = re.compile(r"(?:^|\s)(?:python3 -m uv run |uv run )?(?:invoke|nox)(?:\s|$)")


def readme_commands(text: str) -> list[str]:
    """Command lines of the README: each line of a ```sh block (comments dropped) and each inline code span that
    runs invoke or nox; a span wrapped over two lines is joined."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        commands += [line.split(" # ")[0].strip() for line in block.splitlines() if line.strip()[:1] not in ("", "#")]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        if TOOL.search(span) and re.match(r"(python3 |uv |invoke |nox|[A-Z_]+=)", span):
            commands.append(span)
    return commands


def runner_options() -> set[str]:
    """Every option string of loadtests/runner.py's parser (from its own --help)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        runner_parse_args(["--help"])
    return set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", out.getvalue()))


def check_invoke(args: list[str]) -> None:
    """``invoke [--list | --help TASK | TASK [options] [positional] [-- runner options]]``."""
    args, _, remainder = split_remainder(args)
    while args and args[0] in INVOKE_CORE:
        args.pop(0)
    if not args:
        return
    name, *rest = args
    assert name in TASKS, f"no invoke task {name!r} (tasks: {sorted(TASKS)})"
    context: ParserContext = TASKS[name]
    positional = len(context.positional_args)
    while rest:
        token = rest.pop(0)
        if not token.startswith("-"):
            assert positional, f"invoke {name}: unexpected argument {token!r}"
            positional -= 1
            continue
        flag = token.split("=")[0]
        assert flag in context.flags or flag in context.inverse_flags, f"invoke {name}: no option {flag}"
        if "=" not in token and flag in context.flags and context.flags[flag].takes_value:
            assert rest, f"invoke {name}: {flag} needs a value"
            rest.pop(0)
    if remainder:
        assert name == "load", f"invoke {name} takes nothing after --"
        check_runner_options(remainder)


def check_nox(args: list[str]) -> None:
    """``nox [-l] [-s SESSION …] [-- options]``; options after -- of ``load`` are the runner's."""
    args, _, remainder = split_remainder(args)
    sessions = []
    while args:
        token = args.pop(0)
        if token in ("-s", "--session", "--sessions"):
            sessions.append(args.pop(0))
        else:
            assert token in NOX_CORE_FLAGS, f"nox: unexpected {token!r}"
    for session in sessions:
        assert session in SESSIONS, f"no nox session {session!r} (sessions: {sorted(SESSIONS)})"
    if remainder and sessions == ["load"]:
        check_runner_options(remainder)


def check_runner_options(args: list[str]) -> None:
    known = runner_options()
    for token in args:
        if token.startswith("-"):
            assert token.split("=")[0] in known, f"loadtests/runner.py has no option {token}"


def split_remainder(args: list[str]) -> tuple[list[str], bool, list[str]]:
    if "--" in args:
        at = args.index("--")
        return args[:at], True, args[at + 1 :]
    return list(args), False, []


def check_command(command: str) -> None:
    """One README command line: `uv` only as `python3 -m uv`; invoke and nox calls name real tasks/options."""
    for part in re.split(r"\s*(?:&&|;|\|\|)\s*", command):
        # Placeholders such as [--event term|int|…] are optional parts: check the options they name.
        words = shlex.split(part.replace("[", " ").replace("]", " "))
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            words.pop(0)  # environment assignments
        if not words:
            continue
        assert words[0] != "uv", f"{command!r}: `uv` may not be on PATH after pip installs it; use python3 -m uv"
        if words[:3] == ["python3", "-m", "uv"]:
            words = words[3:]
            if words[:1] == ["run"]:
                words = words[1:]
        if words[:1] == ["invoke"]:
            check_invoke(words[1:])
        elif words[:1] == ["nox"]:
            check_nox(words[1:])


COMMANDS = readme_commands(README.read_text())


def test_the_readme_has_commands_to_check() -> None:
    assert len(COMMANDS) >= 10
    assert "python3 -m pip install uv && python3 -m uv run invoke serve --prod" in COMMANDS
    assert any("drill-shutdown" in command for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_names_real_tasks_sessions_and_options(command: str) -> None:
    check_command(command)


@pytest.mark.parametrize(
    "command, problem",
    [
        ("uv run invoke serve", "may not be on PATH"),
        ("python3 -m uv run invoke serv", "no invoke task 'serv'"),
        ("python3 -m uv run invoke drill-shutdown --events term", "no option --events"),
        ("python3 -m uv run invoke serve --port", "needs a value"),
        ("python3 -m uv run nox -s integartion", "no nox session 'integartion'"),
        ("python3 -m uv run invoke load -- --user 5", "has no option --user"),
    ],
)
def test_the_check_catches_a_wrong_command(command: str, problem: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(problem)):
        check_command(command)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_invoke_help_shows_each_options_type_and_default(name: str) -> None:
    for argument in TASKS[name].flags.values():
        if argument.positional:
            continue
        assert argument.help, f"invoke {name} --{argument.name}: no help"
        assert re.search(r"\((switch|integer|number|text), default [^)]+\)$", argument.help), argument.help


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_nox_list_shows_one_whole_sentence_per_session(name: str) -> None:
    first_line = (SESSIONS[name].__doc__ or "").strip().splitlines()[0]
    assert first_line.endswith(".") and first_line[0].isupper(), first_line
    assert "``" not in first_line and len(first_line) <= 118, first_line
