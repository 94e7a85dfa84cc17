"""deeptheory.compare: a build's claims against the reference, what moved."""

import pandas as pd

from deeptheory import compare


def claims(path, rows):
    pd.DataFrame(rows, columns=["id", "claim", "verdict", "reason", "measured", "detail"]).to_csv(path, index=False)
    return path


def test_moved_verdicts_new_and_gone_claims_and_numbers(tmp_path, capsys):
    ref = claims(tmp_path / "ref.csv", [["t:a", "c", "held", "", "x 0.10", "d"], ["t:b", "c", "refuted", "", "y 2", "d"],
                                        ["t:gone", "c", "held", "", "z", "d"]])
    build = claims(tmp_path / "build.csv", [["t:a", "c", "held", "", "x 0.12", "d"],
                                            ["t:b", "c", "inconclusive", "within noise", "y 2", "d"],
                                            ["t:new", "c", "held", "", "w", "d"]])
    assert compare.main([str(build), "--reference", str(ref), "--numbers"]) == 0
    out = capsys.readouterr().out
    assert "verdict moved  t:b: refuted -> inconclusive (within noise)" in out
    assert "only in build  t:new: held" in out and "only in reference  t:gone: held" in out
    assert "measured moved  t:a:" in out and "x 0.12" in out
    assert compare.main([str(build), "--reference", str(ref), "--strict"]) == 1
    assert compare.main([str(ref), "--reference", str(ref), "--strict"]) == 0
    assert "no verdict moved" in capsys.readouterr().out


def test_a_table_without_verdicts_is_named(tmp_path, capsys):
    old = tmp_path / "old.csv"
    pd.DataFrame({"id": ["t:a"], "held": [True]}).to_csv(old, index=False)
    assert compare.main([str(old), "--reference", str(old)]) == 2
    assert "old.csv: not a claims table of verdicts" in capsys.readouterr().err
