"""The README as a new reader meets it: how to install (a venv, the Python it needs, torch's
CPU build), the two commands, the offline and smoke builds, no history, lines that fit."""

from __future__ import annotations

import re
import tomllib

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_no_line_is_over_100_characters():
    assert [line for line in README.splitlines() if len(line) > 100] == []


def test_it_says_how_to_install_without_guessing():
    needs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"Python {needs.replace('>=', '>= ')}" in README
    assert "python3 -m venv .venv && . .venv/bin/activate" in README
    assert "--index-url https://download.pytorch.org/whl/cpu" in README
    assert "pip install -e '.[test]'" in README


def test_its_commands_are_the_ones_ci_and_the_configs_use():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "python3 -m pytest" in ci and "python3 -m pytest" in README
    for name in ("offline.yaml", "smoke.yaml"):
        # each config's own comment gives the command the README gives
        command = re.search(r"^#\s+(snakemake .*)$", (ROOT / "config" / name).read_text(), re.M)[1].strip()
        assert command in README, name
    assert "apt-get install dataset-fashion-mnist" in README
    assert "deeptheory audit --configfile config/offline.yaml config/smoke.yaml" in README


def test_it_links_the_operations_guide_and_tells_no_history():
    assert "docs/OPERATIONS.md" in README
    assert not re.search(r"\bissue \d+|\b20\d\d-\d\d-\d\d\b", README)


def test_it_describes_the_claims_table_by_its_verdicts():
    assert "`id, claim, verdict, reason, measured, detail`" in README
    for verdict in ("held", "refuted", "inconclusive"):
        assert f"- `{verdict}`:" in README


def test_the_conda_environment_is_pyprojects_dependencies():
    """environment.yml: the dependencies and test extra of pyproject.toml, the same bounds,
    the same Python, then the project itself; the README gives its command."""
    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_name = {"torch": "pytorch"}  # conda-forge's names where pip's differ
    wanted = [f"python{project['requires-python']}"] + [
        conda_name.get(name, name) + bounds
        for name, bounds in (re.match(r"([\w-]+)(.*)", d).groups()
                             for d in project["dependencies"] + project["optional-dependencies"]["test"])]
    conda = [d for d in env["dependencies"] if isinstance(d, str) and d != "pip"]
    assert sorted(conda) == sorted(wanted)
    assert {"pip": ["-e ."]} in env["dependencies"]
    assert "conda env create -f environment.yml" in README


def test_the_entry_point_is_the_roots_snakefile():
    assert (ROOT / "Snakefile").is_file() and not (ROOT / "workflow" / "Snakefile").exists()
    assert "`Snakefile`" in README
