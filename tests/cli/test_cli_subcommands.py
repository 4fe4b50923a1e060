"""The CLI registers every subcommand; a missing subcommand module is an error, not a silent gap."""

import pytest

import dmbp_onnx.cli as cli


def test_every_subcommand_is_registered():
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(cli.SUBCOMMANDS) <= set(choices)


def test_a_missing_subcommand_module_raises(monkeypatch):
    monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, "nosuch"))
    with pytest.raises(ModuleNotFoundError, match="nosuch_cmd"):
        cli.build_parser()
