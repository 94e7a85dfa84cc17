"""The ``deeptheory`` command and ``python -m deeptheory``: a help that lists the commands,
each command reached with its own options, one line for a wrong one."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from conftest import ROOT
from deeptheory import audit, cli


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "deeptheory", *args], capture_output=True, text=True, env=env)


def test_the_console_script_is_the_dispatcher():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["deeptheory"] == "deeptheory.cli:main"


def test_help_lists_every_command_and_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: deeptheory COMMAND")
    for name in ("audit", "bench"):
        assert f"\n  {name} " in out


def test_python_dash_m_deeptheory_is_the_same_command():
    out = run_module("--help")
    assert out.returncode == 0 and "audit" in out.stdout and "bench" in out.stdout, out.stderr
    assert run_module("audit", "--help").stdout.startswith("usage: deeptheory audit")


def test_the_audit_runs_through_the_command(tmp_path, capsys):
    assert cli.main(["audit", "--directory", str(tmp_path)]) == 1  # nothing built: every output is absent
    assert "nothing is built yet" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("width: abc\n")
    assert cli.main(["audit", "--directory", str(tmp_path), "--configfile", str(bad)]) == 2
    assert "config key width: unknown key (value 'abc'); allowed here: claims," in capsys.readouterr().err
    assert audit.main(["--directory", str(tmp_path)]) == 1


def test_no_command_or_an_unknown_one_is_one_line_and_exit_2(capsys):
    for argv in ([], ["train"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "audit, bench" in err and "deeptheory --help" in err
