"""The declarative pipeline: a stage type added by a module and a config entry, run, resumed, re-run on
change; dependency order, failures, floors, --only / --from / --list / --dry-run, thread shares."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config

from wsss.cli import run_pipeline
from wsss.pipeline.runner import PipelineRunner, make_context
from wsss.pipeline.stage import StageError

TOY_MODULE = '''
import sys
from wsss.pipeline.stage import STAGES, Stage, StageError, read_json


@STAGES.register_module(force=True)
class Echo(Stage):
    """Writes OUT/out.txt: its own text after the texts of the stages it reads."""

    kind = "echo"

    @classmethod
    def option_names(cls):
        return {"text", "after", "fail", "floor"}

    def reads(self):
        return list(self.options.get("after", []))

    def argv(self):
        inputs = [str(self.ctx.stages[name].out / "out.txt") for name in self.reads()]
        code = (
            "import sys, pathlib, os; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True);"
            "text = ''.join(pathlib.Path(p).read_text() for p in sys.argv[3:]) + sys.argv[2];"
            "(out / 'out.txt').write_text(text); (out / 'threads').write_text(os.environ['OMP_NUM_THREADS']);"
            f"sys.exit({3 if self.options.get('fail') else 0})"
        )
        return [sys.executable, "-c", code, str(self.out), self.options["text"], *inputs]

    def summarize(self):
        text = (self.out / "out.txt").read_text()
        floor = self.options.get("floor")
        if floor is not None and len(text) < floor:
            raise StageError(f"stage {self.name}: wrote {len(text)} characters < {floor}; give it more text")
        return {"metrics": {"length": len(text)}, "headline": "length"}
'''


def write_pipeline(tmp_path: Path, stages: str, name: str = "toy.py") -> Path:
    (tmp_path / "toy_stages.py").write_text(TOY_MODULE)
    config = tmp_path / name
    config.write_text(
        f"custom_imports = dict(imports=['toy_stages'])\nstages = dict({textwrap.dedent(stages)})\n"
    )
    return config


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))  # the stage module beside the config, as a user would have it
    data = tmp_path / "data"
    data.mkdir()
    return tmp_path, data


def run(config: Path, work: Path, data: Path, *extra: str) -> int:
    return run_pipeline.main([str(config), "--work-dir", str(work), "--data-root", str(data), *extra])


def test_a_new_stage_type_runs_resumes_and_reruns_when_its_options_change(toy, capsys):
    tmp_path, data = toy
    stages = "a=dict(type='Echo', text='a'), b=dict(type='Echo', text='b', after=['a']), c=dict(type='Echo', text='c')"
    config = write_pipeline(tmp_path, stages)
    work = tmp_path / "work"
    assert run(config, work, data) == 0
    assert (work / "b" / "out.txt").read_text() == "ab"
    summary = json.loads((work / "summaries" / "b.json").read_text())
    assert summary["stage"] == "b" and summary["type"] == "Echo" and summary["metrics"] == {"length": 2}
    assert set(summary) == {
        "stage",
        "type",
        "description",
        "seconds",
        "metrics",
        "headline",
        "per_class",
        "outputs",
        "notes",
    }
    capsys.readouterr()

    assert run(config, work, data) == 0  # everything done: skipped
    out = capsys.readouterr().out
    assert out.count("[skip]") == 3 and "[start]" not in out

    config = write_pipeline(tmp_path, stages.replace("text='a'", "text='A'"))
    assert run(config, work, data) == 0  # a changed: a and b (which reads it) run again, c does not
    out = capsys.readouterr().out
    assert "[rerun] a: its command or config changed" in out and "[rerun] b: its input a runs again" in out
    assert "[skip] c" in out and (work / "b" / "out.txt").read_text() == "Ab"


def test_only_from_list_and_dry_run(toy, capsys):
    tmp_path, data = toy
    config = write_pipeline(
        tmp_path, "a=dict(type='Echo', text='a'), b=dict(type='Echo', text='b', after=['a'])"
    )
    work = tmp_path / "work"
    assert run(config, work, data, "--only", "b") == 2
    assert "stage b needs a, which are not done" in capsys.readouterr().err
    assert run(config, work, data, "--list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:2] == ["a", "pending"] and "not run yet" in listed[1]
    assert run(config, tmp_path / "fresh", data, "--dry-run") == 0
    commands = capsys.readouterr().out.replace(str(tmp_path / "fresh"), str(work)).splitlines()
    assert len(commands) == 2 and commands[0].startswith(sys.executable) and not (tmp_path / "fresh").exists()

    assert run(config, work, data) == 0
    first = json.loads((work / "stages" / "a.json").read_text())
    assert first["command"] == commands[0]  # the pipeline runs exactly the command --dry-run prints
    capsys.readouterr()
    assert run(config, work, data, "--only", "a") == 0  # a alone, again; b is now stale
    assert json.loads((work / "stages" / "a.json").read_text())["token"] != first["token"]
    assert run(config, work, data, "--list") == 0
    assert "an input was made again since" in capsys.readouterr().out
    assert run(config, work, data, "--from", "a") == 0
    out = capsys.readouterr().out
    assert "[rerun] a: asked to run again" in out and "[rerun] b" in out


def test_failure_and_floor_stop_the_pipeline_with_one_line(toy, capsys):
    tmp_path, data = toy
    config = write_pipeline(
        tmp_path,
        "bad=dict(type='Echo', text='x', fail=True), after=dict(type='Echo', text='y', after=['bad'])",
    )
    work = tmp_path / "work"
    assert run(config, work, data) == 2
    err = capsys.readouterr().err
    assert "stage bad failed" in err and "logs/bad.log" in err and not (work / "after").exists()
    config = write_pipeline(tmp_path, "short=dict(type='Echo', text='x', floor=3)")
    assert run(config, tmp_path / "work2", data) == 2
    assert "stage short: wrote 1 characters < 3; give it more text" in capsys.readouterr().err
    assert run(config, tmp_path / "work2", data) == 2  # done, but the floor still stops the pipeline
    assert "wrote 1 characters < 3" in capsys.readouterr().err


def test_stages_started_together_share_the_cores(toy, monkeypatch):
    tmp_path, data = toy
    monkeypatch.setattr("wsss.pipeline.runner.usable_cores", lambda: 4)
    config = write_pipeline(
        tmp_path,
        "a=dict(type='Echo', text='a'), b=dict(type='Echo', text='b'), c=dict(type='Echo', text='c', after=['a', 'b'])",
    )
    assert run(config, tmp_path / "work", data) == 0
    assert [(tmp_path / "work" / n / "threads").read_text() for n in "abc"] == ["2", "2", "4"]
    # a stage's share file says what it may use now: c ran alone, with every core
    assert (tmp_path / "work" / "threads" / "c").read_text() == "4"


def test_a_stage_follows_its_share_of_the_cores(tmp_path, monkeypatch):
    import torch

    from wsss.parallel import THREAD_SHARE_VARIABLE, follow_thread_share

    threads = torch.get_num_threads()
    share = tmp_path / "share"
    monkeypatch.setenv(THREAD_SHARE_VARIABLE, str(share))
    assert follow_thread_share() is None  # no file yet: nothing changes
    share.write_text("2")
    assert follow_thread_share() == 2 and torch.get_num_threads() == 2
    torch.set_num_threads(threads)


def test_bad_configs_are_named(toy):
    tmp_path, data = toy
    for stages, message in [
        ("a=dict(type='Nope')", "stage a has type 'Nope', which is not a stage type"),
        ("a=dict(type='Echo', text='a', colour='red')", r"unknown option\(s\) \['colour'\]"),
        ("a=dict(type='Echo', text='a', after=['ghost'])", "stage a needs 'ghost', which is not a stage"),
        (
            "a=dict(type='Echo', text='a', after=['b']), b=dict(type='Echo', text='b', after=['a'])",
            "cycle: a -> b -> a",
        ),
    ]:
        cfg = Config.fromfile(str(write_pipeline(tmp_path, stages)))
        with pytest.raises(StageError, match=message):
            ctx, built = make_context(cfg, tmp_path / "toy.py", tmp_path / "work", data)
            PipelineRunner(built, ctx)


def test_cfg_options_override_a_stage_option_from_the_command_line(toy, capsys):
    tmp_path, data = toy
    config = write_pipeline(tmp_path, "a=dict(type='Echo', text='a')")
    work = tmp_path / "work"
    assert run(config, work, data, "--cfg-options", "stages.a.text=override") == 0
    assert (work / "a" / "out.txt").read_text() == "override"
    capsys.readouterr()
    assert run(config, work, data) == 0  # the config's own text again: a changed command, so a reruns
    assert "[rerun] a: its command or config changed" in capsys.readouterr().out
    assert (work / "a" / "out.txt").read_text() == "a"


def test_jobs_below_one_is_refused(toy, tool_error):
    """Issue 14, finding 11: --jobs 0 used to run."""
    tmp_path, data = toy
    config = write_pipeline(tmp_path, "a=dict(type='Echo', text='a')")
    tool_error(
        run(config, tmp_path / "work", data, "--jobs", "0"), "^error: --jobs must be at least 1, got 0"
    )
    assert not (tmp_path / "work").exists()


def test_dry_run_into_a_closed_pipe_stops_quietly(toy):
    """`run_pipeline.py --dry-run | head -1`: no traceback when the reader leaves early."""
    tmp_path, data = toy
    config = write_pipeline(tmp_path, ", ".join(f"s{i}=dict(type='Echo', text='{i}')" for i in range(2000)))
    script = (
        "import sys; from wsss.cli import run_pipeline; "
        f"sys.exit(run_pipeline.main([{str(config)!r}, '--work-dir', {str(tmp_path / 'work')!r}, "
        f"'--data-root', {str(data)!r}, '--dry-run']))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} | head -n 1",
                            shell=True, capture_output=True, text=True, env=env)  # fmt: skip
    assert result.stdout.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_a_stage_that_runs_again_starts_from_an_empty_folder(toy, capsys):
    """Outdated output is removed before a stage runs again, so its tool cannot resume from files an
    older command made (seed files of the previous model); an unchanged stage keeps its folder."""
    tmp_path, data = toy
    stages = "a=dict(type='Echo', text='a'), b=dict(type='Echo', text='b', after=['a']), c=dict(type='Echo', text='c')"
    config = write_pipeline(tmp_path, stages)
    work = tmp_path / "work"
    assert run(config, work, data) == 0
    for name in "abc":
        (work / name / "made_by_the_old_command.txt").write_text("old")
    config = write_pipeline(tmp_path, stages.replace("text='a'", "text='A'"))
    assert run(config, work, data) == 0
    assert not (work / "a" / "made_by_the_old_command.txt").exists()
    assert not (work / "b" / "made_by_the_old_command.txt").exists()  # its input ran again
    assert (work / "c" / "made_by_the_old_command.txt").exists()  # unchanged: skipped, untouched
    assert (work / "b" / "out.txt").read_text() == "Ab"
