"""The root command's subcommands, each imported from its module only when used.

`LazyCommands` is the root group's table of commands: it knows every command's name and
summary from `optout.cli.registry`, and imports a command's module (which registers the
command on the root Typer app) the first time the command itself is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping

import typer
import typer.main
from typer._click.core import Command
from typer.core import TyperCommand

from optout.cli.registry import COMMANDS


class LazyCommands(MutableMapping[str, Command]):
    """Every command's name without importing it; the command on first use."""

    def __init__(self, loaded: Mapping[str, Command], root: typer.Typer) -> None:
        self._loaded: dict[str, Command] = dict(loaded)
        self._root = root

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> Command:
        found = self._loaded.get(name)
        if found is None and name in COMMANDS:
            importlib.import_module(COMMANDS[name].module)
            found = built(self._root, name)
            if found is not None:
                self._loaded[name] = found
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._loaded if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]


def built(root: typer.Typer, name: str) -> Command | None:
    """The click command (or group) registered on `root` under `name`, if any."""
    for info in root.registered_commands:
        callback = info.callback
        if info.name == name or (
            info.name is None
            and callback is not None
            and typer.main.get_command_name(callback.__name__) == name
        ):
            return typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=root.pretty_exceptions_short,
                rich_markup_mode=root.rich_markup_mode,
            )
    for group in root.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=root.pretty_exceptions_short,
                suggest_commands=root.suggest_commands,
                rich_markup_mode=root.rich_markup_mode,
            )
    return None


def short_help(commands: Mapping[str, Command], name: str, limit: int) -> str:
    """The line `--help` shows for a command: its own when loaded, else the registry's."""
    if not isinstance(commands, LazyCommands) or commands.is_loaded(name):
        return commands[name].get_short_help_str(limit)
    return TyperCommand(name=name, help=COMMANDS[name].summary).get_short_help_str(limit)
