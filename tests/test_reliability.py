"""Issue 14 (reliability): each numbered finding reproduced, asserting the one-line error or the right result.

A user's mistake ends a tool with ``error: <file>: <what>; <what to do>`` and exit code 2 (the
``tool_error`` fixture); nothing is left half-done, and nothing wrong passes silently.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_prepare_coco import CATEGORIES, H, W, annotation, write_json

from wsss.cli import prepare_coco
from wsss.parallel import process_alive
from wsss.pipeline.reaper import reap

REPO = Path(__file__).resolve().parents[1]


# --- 1. prepare_coco: bad coordinates, unknown images, wrong sizes, missing keys ---------------------


@pytest.fixture
def coco_image(tmp_path: Path) -> Path:
    """A folder with one 40x30 image ``a.jpg`` (image id 1 in the jsons below)."""
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (W, H), (90, 120, 30)).save(images / "a.jpg")
    return images


IMAGE = {"id": 1, "file_name": "a.jpg", "height": H, "width": W}
SQUARE = [[2, 2, 20, 2, 20, 20, 2, 20]]


@pytest.mark.parametrize(
    "image, segmentation, image_id, message",
    [
        (IMAGE, [[float("nan"), 2, 20, 2, 20, 20]], 1, "annotation 7: polygon coordinates must be finite"),
        (IMAGE, [[1e9, 2, 20, 2, 20, 20]], 1, "annotation 7: polygon coordinates span .* far outside"),
        (IMAGE, SQUARE, 5, "annotation 7: image_id 5 is not in 'images'"),
        (IMAGE, None, 1, "annotation 7: no 'segmentation'"),
        ({**IMAGE, "height": -H}, SQUARE, 1, "image 1: height must be a positive whole number"),
        (
            {k: v for k, v in IMAGE.items() if k != "height"},
            SQUARE,
            1,
            "image 1: height must be a whole number",
        ),
        ({**IMAGE, "height": 2 * H}, SQUARE, 1, r"a\.jpg: is 40x30 but .* says 40x60"),
        # beyond the issue: a boolean height (int(True) == 1), two images sharing an id
        ({**IMAGE, "height": True}, SQUARE, 1, "image 1: height must be a whole number, got True"),
        ([IMAGE, {**IMAGE, "file_name": "b.jpg"}], SQUARE, 1, "two images have the id 1"),
        # b.jpg is not there, so only the json's size says how large its label map is
        (
            [IMAGE, {"id": 2, "file_name": "b.jpg", "height": 10**6, "width": 10**6}],
            SQUARE,
            1,
            "image 2: 1000000x1000000 is too large for a label map",
        ),
    ],
)
def test_finding1_prepare_coco_refuses_bad_annotations_and_leaves_nothing(
    tool_error, coco_image, tmp_path, image, segmentation, image_id, message
):
    ann = annotation(7, image_id, 1, segmentation)
    if segmentation is None:
        del ann["segmentation"]
    path = write_json(tmp_path / "instances_bad.json", image if isinstance(image, list) else [image], [ann])
    out = tmp_path / "out"
    code = prepare_coco.main(["--ann", str(path), "--images", str(coco_image), "--out", str(out)])
    tool_error(code, message)
    assert not out.exists()  # no empty folders, no image links


# Runs in a child with a 2 GiB address-space limit: a coordinate that makes pycocotools rasterise
# gigabytes fails the test instead of the machine, and a heap overflow in its decoder shows as a crash.
FUZZ_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from wsss.data.coco_convert import convert_coco
    from wsss.data.label_io import read_label_png
    cases = json.loads(Path(sys.argv[1]).read_text())
    images, work = Path(sys.argv[2]), Path(sys.argv[3])
    outcomes = []
    for index, case in enumerate(cases):
        ann_path = work / f"instances_case{index}.json"
        ann_path.write_text(json.dumps(case))
        for skip_bad in (False, True):
            out = work / f"out{index}_{int(skip_bad)}"
            try:
                summary = convert_coco(ann_path, images, out, progress=False, skip_bad=skip_bad)
            except (ValueError, FileNotFoundError) as err:
                outcomes.append({"case": index, "skip_bad": skip_bad, "error": str(err)})
                continue
            labels = sorted(int(v) for v in set(read_label_png(out / "SegmentationClass" / "a.png").ravel()))
            outcomes.append({"case": index, "skip_bad": skip_bad, "refused": list(summary.refused),
                             "labels": labels})
    print(json.dumps(outcomes))
    """
)


def fuzz_cases(rng: np.random.Generator, count: int) -> list[dict]:
    """Jsons of one image with a good square (annotation 1, class 1) and one malformed annotation (id 100+i)."""
    good_counts = "".join(chr(48 + v) for v in rng.integers(0, 64, 12))

    def coordinate():
        return [
            float("nan"),
            float("inf"),
            -float("inf"),
            1e9,
            -1e9,
            1e300,
            -5.0,
            45.0,
            "12",
            None,
            [1],
            True,
        ][rng.integers(12)]

    def polygon():
        points = [float(v) for v in rng.uniform(0, W, 2 * int(rng.integers(3, 7)))]
        kind = rng.integers(7)
        if kind == 0:
            points[rng.integers(len(points))] = coordinate()
        elif kind == 1:
            points = points[: int(rng.integers(0, 6))]
        elif kind == 2:
            points = points[:-1]  # odd length
        elif kind == 3:
            return [points, []]
        elif kind == 4:
            return []
        elif kind == 5:
            return [float(rng.uniform(0, 10))]  # a number where a polygon belongs
        return [points]

    def rle():
        kind = rng.integers(8)
        size = [H, W]
        if kind == 0:
            size = [H + int(rng.integers(1, 5)), W]
        elif kind == 1:
            size = [["a", "b"], [H], None, "30x40"][rng.integers(4)]
        if kind == 2:
            counts = [int(v) for v in rng.integers(-5, 50, int(rng.integers(1, 9)))]
        elif kind == 3:
            counts = [H * W - 10, 5]  # sums to less than the image
        elif kind == 4:
            counts = "".join(chr(int(v)) for v in rng.integers(33, 127, int(rng.integers(1, 20))))
        elif kind == 5:
            counts = good_counts
        elif kind == 6:
            counts = [None, 5, 1.5, {}][rng.integers(4)]
        else:
            return {"size": size}
        return {"size": size, "counts": counts}

    cases = []
    for index in range(count):
        bad = annotation(100 + index, 1, 5, polygon() if rng.random() < 0.45 else rle())
        family = rng.integers(10)
        if family == 0:
            del bad[["id", "image_id", "category_id", "segmentation"][rng.integers(4)]]
        elif family == 1:
            bad[["image_id", "category_id"][rng.integers(2)]] = ["x", 999, None, [1]][rng.integers(4)]
        elif family == 2:
            bad["segmentation"] = [None, 5, "abc", {}, {"counts": "0"}][rng.integers(5)]
        annotations = [annotation(1, 1, 1, SQUARE), bad]
        rng.shuffle(annotations)
        cases.append({"images": [IMAGE], "annotations": annotations, "categories": CATEGORIES})
    return cases


def test_finding1_fuzz_prepare_coco_converts_or_names_the_refused_annotation(coco_image, tmp_path):
    cases = fuzz_cases(np.random.default_rng(14), 120)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", FUZZ_CHILD, str(tmp_path / "cases.json"), str(coco_image), str(work)],
        capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout)
    assert len(outcomes) == 2 * len(cases)
    refusals = 0
    for outcome in outcomes:
        bad_id = 100 + outcome["case"]
        bad = next(a for a in cases[outcome["case"]]["annotations"] if a.get("id", bad_id) == bad_id)
        if "error" in outcome:
            refusals += 1
            named = f"annotation {bad['id']}" if "id" in bad else "annotation ?"
            assert named in outcome["error"], (bad, outcome["error"])
            assert not outcome["skip_bad"] or "?" in named, (bad, outcome["error"])
        else:
            # The good square is always painted; the malformed one, when kept, could only add class 2.
            assert 1 in outcome["labels"] and set(outcome["labels"]) <= {0, 1, 2}, (bad, outcome)
            assert outcome["refused"] in ([], [bad.get("id", "?")]), (bad, outcome)
    assert refusals > len(cases) // 2  # most mutations are refused, so the fuzzing reaches the checks


# --- 7. a killed parent takes its children along; temporaries of killed runs are cleaned -------------

SLEEPY_STAGES = '''
import sys
from wsss.pipeline.stage import STAGES, Stage

# The stage: a pool worker (the toolkit's pool), a child that runs like a tool under the pipeline
# (as torchrun's workers do) and, with plain=True, a plain child; then it says so and sleeps.
STAGE_CODE = """
import os, subprocess, sys, time
from pathlib import Path
from wsss.parallel import process_pool, watch_parent_if_asked
watch_parent_if_asked()
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
pool = process_pool(1)
pids = [os.getpid(), pool.apply_async(os.getpid).get()]
code = "from wsss.parallel import watch_parent_if_asked; watch_parent_if_asked(); import time; time.sleep(30)"
pids.append(subprocess.Popen([sys.executable, "-c", code]).pid)
if sys.argv[2] == "plain":
    pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]).pid)
(out / "pids").write_text(" ".join(map(str, pids)))
time.sleep(2)
(out / "late").write_text("written after the pipeline was killed")
"""


@STAGES.register_module(force=True)
class Sleepy(Stage):
    kind = "sleepy"

    @classmethod
    def option_names(cls):
        return {"plain"}

    def argv(self):
        return [sys.executable, "-c", STAGE_CODE, str(self.out), "plain" if self.options.get("plain") else "-"]

    def summarize(self):
        return {"metrics": {}}
'''


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def start_sleepy_pipeline(tmp_path: Path, plain: bool) -> tuple[subprocess.Popen, Path, list[int]]:
    """tools/run_pipeline.py running one Sleepy stage, once the stage has started all its processes."""
    (tmp_path / "sleepy_stages.py").write_text(SLEEPY_STAGES)
    config = tmp_path / "sleepy.py"
    config.write_text(
        f"custom_imports = dict(imports=['sleepy_stages'])\nstages = dict(s=dict(type='Sleepy', plain={plain}))\n"
    )
    (tmp_path / "data").mkdir()
    work = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    pipeline = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "run_pipeline.py"), str(config), "--work-dir", str(work),
         "--data-root", str(tmp_path / "data")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pids_file = work / "s" / "pids"
    if not wait_for(pids_file.is_file, 60):
        pipeline.kill()
        raise AssertionError(f"the stage did not start: {pipeline.communicate()}")
    return pipeline, work / "s", [int(pid) for pid in pids_file.read_text().split()]


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's"
)
@pytest.mark.parametrize("plain", [False, True], ids=["tool-children", "plain-grandchild"])
def test_finding7_a_pipeline_killed_with_sigkill_takes_its_stage_and_all_it_started_along(tmp_path, plain):
    """The tool's pool worker and child die by the kernel's signal; a plain child of the stage (one that
    does not watch its parent) by the reaper, which kills the stage's process group."""
    pipeline, out, pids = start_sleepy_pipeline(tmp_path, plain=plain)
    started = time.monotonic()
    pipeline.kill()  # SIGKILL: no handler runs
    pipeline.communicate()
    assert wait_for(lambda: not any(map(process_alive, pids)), 5), [p for p in pids if process_alive(p)]
    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
    assert not (out / "late").exists()


def test_finding7_the_reaper_kills_the_groups_still_listed_and_spares_released_ones():
    kept, killed = (
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
        for _ in range(2)
    )
    try:
        assert reap([f"+{kept.pid}\n", f"+{killed.pid}\n", "junk\n", f"-{kept.pid}\n"]) == {killed.pid}
        assert killed.wait(timeout=5) == -signal.SIGKILL and kept.poll() is None
    finally:
        kept.kill()
        killed.kill()
        kept.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")
def test_finding7_sigterm_stops_the_stage_and_its_whole_process_group(tmp_path):
    pipeline, out, pids = start_sleepy_pipeline(tmp_path, plain=True)  # pids[-1]: a plain child
    pipeline.terminate()
    _, err = pipeline.communicate(timeout=30)
    assert pipeline.returncode == 130 and "interrupted; run the same command again to resume" in err
    assert wait_for(lambda: not any(map(process_alive, pids)), 5), [p for p in pids if process_alive(p)]
    assert not (out / "late").exists()


WATCHED_CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    code = (
        "import sys, time; sys.platform = 'darwin'; "  # no parent-death signal: the portable fallback
        "from wsss.parallel import watch_parent; watch_parent(interval=0.05); time.sleep(30)"
    )
    print(subprocess.Popen([sys.executable, "-c", code]).pid, flush=True)
    time.sleep(30)
    """
)


def test_finding7_without_the_kernel_signal_a_watcher_thread_ends_the_orphan(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", WATCHED_CHILD], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # the child is watching
    assert process_alive(child)
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not process_alive(child), 5)


def test_finding7_prepare_coco_deletes_temporaries_of_a_killed_run(coco_image, tmp_path):
    path = write_json(tmp_path / "instances_train.json", [IMAGE], [annotation(1, 1, 1, SQUARE)])
    labels = tmp_path / "out" / "SegmentationClass"
    labels.mkdir(parents=True)
    leftover = labels / ".a.999999999.tmp.png"  # no process has that id
    leftover.write_bytes(b"half a png")
    assert (
        prepare_coco.main(["--ann", str(path), "--images", str(coco_image), "--out", str(tmp_path / "out")])
        == 0
    )
    assert sorted(p.name for p in labels.iterdir()) == ["a.png"]


# --- 8. output paths are checked before any work, with one line naming the path --------------------

CAM_SHAPES = str(REPO / "configs" / "bas" / "cam_shapes.py")
SEG_SHAPES = str(REPO / "configs" / "seg" / "deeplabv3plus_shapes.py")
# tool, its arguments ({missing}: an input that is not there, {file}: a file, {folder}: a folder), bad flag
OUTPUT_CASES = [
    ("eval_seeds", "--seeds {missing} --gt {missing} --list {missing} --classes voc --json {folder}", "--json"),
    ("eval_seeds", "--seeds {missing} --gt {missing} --list {missing} --classes voc --plot {folder}", "--plot"),
    ("eval_seg", "--pred {missing} --gt {missing} --list {missing} --classes voc --json {folder}", "--json"),
    ("eval_features", "--features {missing} --gt {missing} --list {missing} --classes voc --json {folder}", "--json"),
    ("test", f"{SEG_SHAPES} {{missing}} --json {{folder}}", "--json"),
    ("test", f"{SEG_SHAPES} {{missing}} --out {{file}}", "--out"),
    ("test", f"{SEG_SHAPES} {{missing}} --show-dir {{file}}/sub", "--show-dir"),
    ("eval_wsol", f"{CAM_SHAPES} {{missing}} --json {{folder}}", "--json"),
    ("make_seeds", f"{CAM_SHAPES} {{missing}} --out {{file}}", "--out"),
    ("make_pseudo_labels", "--seeds {missing} --images {missing} --out {file} --bg-threshold 0.3", "--out"),
    ("fuse_seeds", "--seeds {missing} --cam {missing} --out {file}", "--out"),
    ("extract_features", f"{CAM_SHAPES} --out {{file}}", "--out"),
    ("find_neighbours", f"{CAM_SHAPES} --out {{folder}}", "--out"),
    ("visualize", "--images {missing} --list {missing} --seeds {missing} --out {folder}", "--out"),
    ("make_shapes", "--out {file} --n-train 2 --n-val 1", "--out"),
    ("prepare_coco", "--ann {missing} --images {missing} --out {file}", "--out"),
    ("train", f"{CAM_SHAPES} --work-dir {{file}}", "--work-dir"),
    ("run_pipeline", f"{REPO / 'configs' / 'pipeline' / 'shapes.py'} --work-dir {{file}} --data-root {{folder}}",
     "--work-dir"),
]  # fmt: skip


@pytest.mark.parametrize("tool, arguments, flag", OUTPUT_CASES, ids=[f"{t}{f}" for t, _, f in OUTPUT_CASES])
def test_finding8_an_output_that_is_a_file_or_a_folder_is_refused_first(
    tool_error, tmp_path, tool, arguments, flag
):
    import importlib

    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    names = {"missing": tmp_path / "missing", "file": tmp_path / "file", "folder": tmp_path / "folder"}
    argv = arguments.format(**names).split()
    code = importlib.import_module(f"wsss.cli.{tool}").main(argv)
    given = argv[argv.index(flag) + 1]
    tool_error(code, f"^error: {flag} {given}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]  # nothing made


def without_permission_override() -> list[str]:
    """A command prefix under which the permission bits hold: none for a user, and for root (CI may run
    the tests as root) ``setpriv`` dropping the capabilities that let root write anywhere."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux's setpriv: permission bits cannot be made to hold")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permission bits")
def test_finding8_a_folder_without_write_permission_is_refused_first(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    missing = tmp_path / "missing"
    result = subprocess.run(
        [*without_permission_override(), sys.executable, "-m", "wsss.cli.eval_seeds", "--seeds", str(missing),
         "--gt", str(missing), "--list", str(missing), "--classes", "voc", "--json", str(locked / "sweep.json")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: --json {locked / 'sweep.json'}: {locked} is not writable; choose another path"
    )
    assert list(locked.iterdir()) == []


# --- beyond the issue: cases found while trying the tools further --------------------------------------


def test_eval_seg_refuses_predictions_with_values_beyond_the_classes(tool_error, tmp_path):
    """A prediction value >= C counted as background: another dataset's PNGs scored 100% silently."""
    from test_evaluation import write_folders

    from wsss.cli import eval_seg
    from wsss.data.label_io import read_label_png, write_label_png

    pred, gt, id_list, _ = write_folders(tmp_path, count=2)
    marked = read_label_png(pred / "2007_000000.png")
    marked[:3] = 254  # MARS's biased pixels and 255 are valid predictions (counted as background)
    marked[3:5] = 255
    write_label_png(pred / "2007_000000.png", marked)
    args = [
        "--pred",
        str(pred),
        "--gt",
        str(gt),
        "--classes",
        str(tmp_path / "classes.txt"),
        "--list",
        str(id_list),
    ]
    assert eval_seg.main([*args, "--no-progress"]) == 0
    bad = pred / "2007_000001.png"
    write_label_png(bad, np.full((40, 56), 7, np.uint8))
    code = eval_seg.main(["--pred", str(pred), "--gt", str(gt), "--classes", str(tmp_path / "classes.txt"),
                          "--list", str(id_list), "--no-progress"])  # fmt: skip
    tool_error(code, rf"^error: {bad}: holds label values \[7\] beyond the 4 classes")


def test_seed_maps_outside_the_unit_interval_are_refused(tmp_path):
    """Seeds not divided by their maximum made every threshold mean something else, silently."""
    from wsss.localize.seed_io import load_seeds

    for value in (5.0, -1.0):
        path = tmp_path / f"seed_{value}.npz"
        with open(path, "wb") as handle:
            np.savez_compressed(handle, keys=np.array([1]), maps=np.full((1, 4, 4), value, np.float16))
        with pytest.raises(ValueError, match=f"^{path}: map values span .* outside \\[0, 1\\]"):
            load_seeds(path)


def test_split_lists_with_a_byte_order_mark_or_not_in_utf8(tmp_path):
    from wsss.data.classes import read_class_names
    from wsss.data.dataset import read_split

    marked = tmp_path / "train.txt"
    marked.write_bytes(b"\xef\xbb\xbfa\r\nb\r\n")  # as a Windows editor saves it
    assert read_split(marked) == ["a", "b"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=f"^{latin}: not a UTF-8 text file"):
        read_split(latin)
    with pytest.raises(ValueError, match=f"^{latin}: not a UTF-8 text file"):
        read_class_names(latin)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("syntax.py", "model = dict(\n", r"not valid Python \(line 1: '\(' was never closed"),
        (
            "runs.py",
            "model = dict(type=Foo)\n",
            r"the config fails when read \(NameError: name 'Foo' is not defined\)",
        ),
        (
            "base.py",
            "_base_ = ['nope.py']\n",
            r".*/nope.py, which it reads \(_base_ or a file it names\), not found",
        ),
        ("notes.txt", "model = 1\n", r"a config is a .py file \(or .yml / .yaml / .json\), not .txt"),
    ],
)
def test_broken_config_files_are_one_line_in_every_tool(tool_error, tmp_path, name, text, message):
    """A config with a syntax error, failing code, a missing _base_ or another suffix: tracebacks before."""
    from wsss.cli import run_pipeline, test, train

    config = tmp_path / name
    config.write_text(text)
    for tool, argv in (
        (train, [str(config), "--work-dir", str(tmp_path / "work")]),
        (test, [str(config), str(tmp_path / "x.pth"), "--device", "cpu"]),
        (run_pipeline, [str(config), "--work-dir", str(tmp_path / "work"), "--data-root", str(tmp_path)]),
    ):
        code = tool.main(argv)
        tool_error(code, f"^error: {config}: {message}")


def test_cfg_options_without_a_value_is_a_usage_error(capsys):
    from wsss.cli import train

    with pytest.raises(SystemExit) as stopped:
        train.main([CAM_SHAPES, "--cfg-options", "model.backbone.name"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert "--cfg-options: expected KEY=VALUE items, got 'model.backbone.name'" in err


def test_nan_scale_and_junk_npz_files(tool_error, tmp_path):
    from wsss.cli import make_seeds
    from wsss.features.io import read_feature_file
    from wsss.localize.seed_io import load_seeds

    tool_error(make_seeds.main([CAM_SHAPES, str(tmp_path / "x.pth"), "--out", str(tmp_path / "o"), "--scales", "nan"]),
               r"^error: --scales must lie in 0.1..8")  # fmt: skip
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an archive at all " * 4)
    for load in (load_seeds, read_feature_file):
        with pytest.raises(ValueError, match=r"neither an .npz archive nor an .npy array") as caught:
            load(junk)
        assert "allow_pickle" not in str(caught.value) and str(caught.value).startswith(str(junk))


def test_an_output_folder_that_is_a_dangling_or_looping_link_is_refused(tool_error, tmp_path):
    from wsss.cli import make_shapes

    (tmp_path / "dangling").symlink_to(tmp_path / "gone" / "deeper")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for name in ("dangling", "loop"):
        link = tmp_path / name
        tool_error(make_shapes.main(["--out", str(link), "--n-train", "2", "--n-val", "1"]),
                   f"^error: --out {link}: is a link to .*, which is not there \\(or links back\\)")  # fmt: skip
