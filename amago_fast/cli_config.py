"""Command-line flags generated from config dataclasses (TrainerConfig, AgentConfig).

Every field becomes ``--field-name`` with the field's docstring (the string literal right
below it in the class body, read from the source with ``ast``) as its help text, so a
field added to a config is a flag without touching the CLI. Flags default to "not
given": only what the user types overrides the preset / config file / dataclass default.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import typing
from typing import Any, Callable, Optional

NONE_WORDS = ("none", "None", "null")


def field_docs(cls: type) -> dict[str, str]:
    """{field name: docstring} for a dataclass whose fields carry a string literal below them."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (frozen app, REPL class): no help text
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _item(text: str) -> Any:
    """One comma-separated list item: a number / literal, else the bare string."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def _literal(text: str) -> Any:
    """JSON or a Python literal."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"expected a JSON / Python literal, got {text!r}") from None


def _converter(tp: Any, name: str) -> tuple[Callable[[str], Any], str]:
    """(str -> value, metavar) for a field type; Optional[X] also accepts 'none'."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        conv, metavar = _converter(inner, name)

        def optional(text: str) -> Any:
            return None if text in NONE_WORDS else conv(text)

        return optional, metavar + "|none"
    origin = typing.get_origin(tp) or tp
    if origin in (int, float):

        def number(text: str) -> Any:
            try:
                value = float(text.replace("_", "")) if origin is float else int(text.replace("_", ""))
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {origin.__name__}, got {text!r}") from None
            return value

        return number, origin.__name__.upper()
    if origin in (dict, list, tuple):

        def container(text: str) -> Any:
            value = _literal(text) if text.strip()[:1] in "[{(" else [_item(t) for t in text.split(",")]
            if origin is dict and not isinstance(value, dict):
                raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
            if origin is not dict and isinstance(value, dict):
                raise argparse.ArgumentTypeError(f"expected a list, got {text!r}")
            return dict(value) if origin is dict else list(value)

        return container, "JSON" if origin is dict else "A,B,..."
    return str, "STR"


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    dest_prefix: str,
    shown_defaults: Optional[dict] = None,
    title: Optional[str] = None,
) -> dict[str, str]:
    """Add one flag per field of dataclass ``cls``; returns {field name: dest}.

    dest is ``dest_prefix + name``; a field whose ``--name`` is already taken (a CLI flag
    or the other config) becomes ``--<prefix>-name``. shown_defaults overrides the
    default printed in the help (e.g. the CPU agent the CLI starts from).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(title or cls.__name__)
    taken = set(parser._option_string_actions)  # noqa: SLF001 - argparse has no public view
    dests = {}
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if flag in taken or "--no-" + flag[2:] in taken:
            flag = f"--{dest_prefix.rstrip('_.')}-{f.name.replace('_', '-')}"
        dest = dest_prefix + f.name
        default = (shown_defaults or {}).get(f.name, _default(f))
        help_text = (docs.get(f.name, "") + f" (default: {default!r})").replace("%", "%%")  # argparse formats %
        if hints[f.name] is bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            conv, metavar = _converter(hints[f.name], f.name)
            group.add_argument(flag, dest=dest, type=conv, metavar=metavar, default=argparse.SUPPRESS, help=help_text)
        dests[f.name] = dest
    return dests


def given(args: argparse.Namespace, dests: dict[str, str]) -> dict[str, Any]:
    """{field name: value} for the config flags the user typed."""
    return {name: getattr(args, dest) for name, dest in dests.items() if hasattr(args, dest)}
