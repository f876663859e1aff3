"""The pipeline's stage scheduler: order, parallel lanes, markers, resume and failure reporting."""

from __future__ import annotations

import json
import sys

import pytest

from wsss.pipeline.stages import Stage, StageFailed, StageRunner


def writer(path, text, needs_file=None):
    """A stage command appending ``text`` to ``path`` (after checking that ``needs_file`` exists)."""
    check = f"assert __import__('pathlib').Path({str(needs_file)!r}).exists();" if needs_file else ""
    code = f"{check}open({str(path)!r}, 'a').write({text!r})"
    return lambda: [sys.executable, "-c", code]


def test_stages_run_in_dependency_order_and_resume(tmp_path, capsys):
    out = tmp_path / "out.txt"
    stages = [
        Stage("c", writer(out, "c", tmp_path / "b.flag"), needs=("b",)),
        Stage("a", writer(out, "a")),
        Stage("b", lambda: [sys.executable, "-c", f"open({str(tmp_path / 'b.flag')!r}, 'w')"], needs=("a",)),
    ]
    done = StageRunner(stages, tmp_path / "work", jobs=2).run()
    assert out.read_text() == "ac"
    assert all(stage.seconds is not None and not stage.skipped for stage in done.values())
    marker = json.loads((tmp_path / "work" / "stages" / "c.json").read_text())
    assert marker["command"][0] == sys.executable and marker["seconds"] >= 0
    assert (tmp_path / "work" / "logs" / "a.log").read_text().startswith("$ ")

    again = [Stage(s.name, s.command, s.needs) for s in stages]
    done = StageRunner(again, tmp_path / "work", jobs=2).run()
    assert out.read_text() == "ac"  # nothing ran twice
    assert all(stage.skipped for stage in done.values())
    assert "[skip] a" in capsys.readouterr().out


def test_failure_stops_dependants_and_names_the_log(tmp_path):
    out = tmp_path / "out.txt"
    stages = [
        Stage("bad", lambda: [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]),
        Stage("after", writer(out, "x"), needs=("bad",)),
    ]
    with pytest.raises(StageFailed, match=r"stage bad failed; see .*logs/bad.log"):
        StageRunner(stages, tmp_path / "work").run()
    assert not out.exists()
    assert "boom" in (tmp_path / "work" / "logs" / "bad.log").read_text()
    assert not (tmp_path / "work" / "stages" / "bad.json").exists()


def test_unknown_dependency_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown stages"):
        StageRunner([Stage("a", writer(tmp_path / "x", "a"), needs=("ghost",))], tmp_path)


def test_stages_started_together_share_the_cores_and_a_lone_stage_gets_all(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)

    def record(name):
        code = f"import os; open({str(tmp_path / name)!r}, 'w').write(os.environ['OMP_NUM_THREADS'])"
        return lambda: [sys.executable, "-c", code]

    stages = [Stage("a", record("a")), Stage("b", record("b")), Stage("c", record("c"), needs=("a", "b"))]
    StageRunner(stages, tmp_path / "work", jobs=2).run()
    assert [(tmp_path / name).read_text() for name in "abc"] == ["2", "2", "4"]
