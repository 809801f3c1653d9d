"""Every command's and group's --help ends with an example, as the README promises."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = (), groups: bool = True) -> list[tuple[str, ...]]:
    """Every command's path under `group` (the groups' own paths too, unless `groups` is False)."""
    found = [prefix] if prefix and groups else []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name), groups)
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_help__has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"tenge {' '.join(path)} --help has no example"
