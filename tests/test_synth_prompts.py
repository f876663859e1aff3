"""The belief-graph prompt planner: estimates against hand computations, questions, answers, sampling, tool."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.cli.plan_prompts import main
from wsss.data.captions import write_captions
from wsss.data.classes import write_class_names
from wsss.synth.prompts.answers import (
    AnswerWarning,
    answer,
    apply_answers,
    apply_yes_no,
    parse_answer,
    target,
)
from wsss.synth.prompts.build import build_graph
from wsss.synth.prompts.graph import NONE, Attribute, BeliefGraph, Entity, Relation, load_graph, save_graph
from wsss.synth.prompts.lexicon import make_lexicon
from wsss.synth.prompts.parse import CaptionReader
from wsss.synth.prompts.questions import Question, rank_questions
from wsss.synth.prompts.sampling import balance_contexts, sample_prompts
from wsss.synth.prompts.selfplay import self_play, split_holdout, true_graph, weighted_nll
from wsss.synth.prompts.sources import load_images
from wsss.synth.prompts.stats import entropy, pmi

TINY = {
    "img1": ["a red boat on the water"],
    "img2": ["a blue boat on the lake"],
    "img3": ["a red boat"],
    "img4": ["a train on rails"],
    "img5": ["two green trains and a boat"],
}
CLASSES = ("background", "boat", "train")


@pytest.fixture
def tiny_captions(tmp_path: Path) -> Path:
    write_class_names(tmp_path / "class_names.txt", CLASSES)
    write_captions(tmp_path / "captions.json", TINY)
    return tmp_path / "captions.json"


@pytest.fixture
def tiny_graph(tiny_captions: Path) -> BeliefGraph:
    lexicon = make_lexicon()
    images, classes, source = load_images(lexicon, captions=tiny_captions)
    return build_graph(images, classes, lexicon, 1.0, source)


def _entropy(p) -> float:
    p = np.asarray(list(p), dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_reader_reads_colours_counts_contexts_and_prepositions():
    reader = CaptionReader(["boat", "train", "aeroplane"], make_lexicon())
    facts = reader.read("two small green trains beside a big red airplane on the water")
    assert facts.classes["train"].count == "two" and facts.classes["train"].colours == ["green"]
    assert facts.classes["train"].sizes == ["small"]
    assert facts.classes["aeroplane"].colours == ["red"] and facts.classes["aeroplane"].sizes == ["large"]
    assert facts.contexts == {"water": 1} and facts.prepositions == {("aeroplane", "water"): "on"}
    assert reader.read("a boat beside a boat").classes["boat"].count == "two"
    assert reader.read("boats on a lake").classes["boat"].count == "many"
    assert reader.read("a large jet airplane in the sky").classes["aeroplane"].count == "one"


def test_probabilities_entropy_and_pmi_match_hand_computation(tiny_graph):
    g = tiny_graph
    n = 5
    assert g.entities["boat"].probability == pytest.approx((4 + 1) / (n + 2))
    assert g.entities["train"].probability == pytest.approx((2 + 1) / (n + 2))
    assert g.entities["water"].probability == pytest.approx((2 + 1) / (n + 2))
    assert g.entities["grass"].probability == pytest.approx(1 / (n + 2))
    colour = g.entities["boat"].attributes["colour"]
    # 4 boat mentions, 3 state a colour (red, blue, red); 12 colour names, alpha 1
    assert colour.candidates["red"] == pytest.approx(3 / 15)
    assert colour.candidates["blue"] == pytest.approx(2 / 15)
    assert colour.candidates["green"] == pytest.approx(1 / 15)
    assert colour.importance == pytest.approx(4 / 6)
    assert g.entities["boat"].attributes["size"].importance == pytest.approx(1 / 6)
    assert entropy(colour.candidates) == pytest.approx(_entropy(colour.candidates.values()))
    count = g.entities["train"].attributes["count"].candidates
    assert count == pytest.approx({"one": 2 / 6, "two": 2 / 6, "three": 1 / 6, "many": 1 / 6})
    context = g.relations[("boat", "context")]
    # boat images: img1 water, img2 water, img3 none, img5 none; 10 contexts + none
    assert context.candidates["water"] == pytest.approx(3 / 15)
    assert context.candidates[NONE] == pytest.approx(3 / 15)
    assert context.candidates["rails"] == pytest.approx(1 / 15)
    assert context.prepositions["water"] == "on"

    def npmi(n_ab, n_a, n_b, total):  # the add-one 2x2 table, written out
        p_ab, p_a, p_b = (n_ab + 1) / (total + 4), (n_a + 2) / (total + 4), (n_b + 2) / (total + 4)
        return math.log(p_ab / (p_a * p_b)) / -math.log(p_ab)

    assert context.npmi["water"] == pytest.approx(npmi(2, 4, 2, 5), abs=1e-6)
    assert context.npmi["water"] == pytest.approx(math.log(81 / 72) / math.log(3), abs=1e-6)
    assert pmi(2, 4, 2, 5)[0] == pytest.approx(math.log(81 / 72))
    expected = max(abs(npmi(2, 4, 2, 5)), abs(npmi(0, 4, 1, 5)), abs(npmi(0, 4, 0, 5)))
    assert context.importance == pytest.approx(expected, abs=1e-6)
    assert context.importance == pytest.approx(math.log(2) / math.log(9), abs=1e-6)  # boat never on rails
    beside = g.relations[("boat", "with")].candidates
    assert beside == pytest.approx({"train": 2 / 6, NONE: 4 / 6})
    assert g.meta["context_marginal"]["water"] == pytest.approx(3 / 16)
    assert g.meta["context_marginal"][NONE] == pytest.approx(3 / 16)


def _hand_graph() -> BeliefGraph:
    a = Entity("a", "class", 1.0, 0.5, "a", attributes={
        "colour": Attribute("colour", 0.8, {"x": 0.5, "y": 0.5}),
        "size": Attribute("size", 0.5, {"x": 0.9, "y": 0.1}),
    })  # fmt: skip
    b = Entity(
        "b", "class", 0.6, 1.0, "b", attributes={"colour": Attribute("colour", 1.0, {"x": 0.7, "y": 0.3})}
    )
    w = Entity("w", "context", 0.5, 0.4, "w")
    relations = {("a", "context"): Relation("a", "context", 0.9, {"w": 0.2, NONE: 0.8})}
    return BeliefGraph({"a": a, "b": b, "w": w}, relations, {"context_marginal": {"w": 0.5, NONE: 0.5}})


def test_question_ranking_on_a_hand_made_graph():
    g = _hand_graph()
    h = _entropy
    expected = {
        ("a", "colour"): 1.0 * 0.8 * 0.5 * h([0.5, 0.5]),
        ("a", "size"): 1.0 * 0.5 * 0.5 * h([0.9, 0.1]),
        ("b", "colour"): 0.6 * 1.0 * 1.0 * h([0.7, 0.3]),
        ("a", "context"): 0.9 * h([0.2, 0.8]),
    }
    ranked = rank_questions(g)
    assert [(q.entity, q.name) for q in ranked] == sorted(expected, key=lambda k: -expected[k])
    assert [(q.entity, q.name) for q in ranked][:2] == [("a", "context"), ("b", "colour")]
    for q in ranked:
        assert q.score == pytest.approx(expected[(q.entity, q.name)])
    yes_no = rank_questions(g, yes_no=True)
    assert (yes_no[0].entity, yes_no[0].name) == ("a", "colour")
    assert yes_no[0].score == pytest.approx(0.8 * 0.25)
    assert yes_no[-1].score == pytest.approx(0.5 * 0.09)


def test_pinning_and_yes_no_updates():
    g = _hand_graph()
    answer(g, "b", "colour", "x")
    assert g.entities["b"].attributes["colour"].candidates == {"x": 1.0, "y": 0.0}
    assert g.entities["b"].attributes["colour"].pinned
    assert ("b", "colour") not in {(q.entity, q.name) for q in rank_questions(g)}
    answer(g, "a", "context", "w")
    assert g.entities["w"].probability == 1.0 and g.entities["a"].probability == 1.0
    apply_yes_no(g, Question("attribute", "a", "size", 0.0, "x"), yes=False)
    assert g.entities["a"].attributes["size"].candidates == pytest.approx({"x": 0.0, "y": 1.0})
    assert g.entities["a"].attributes["size"].pinned  # one value left
    answer(g, "a", "colour", "unknown")
    assert not g.entities["a"].attributes["colour"].pinned
    answer(g, "b", "colour", "absent")
    assert g.entities["b"].probability == 0.0


def test_answer_grammar_and_errors():
    values = ["water", "grass", "rails", NONE]
    assert parse_answer("water", values, "q") == {"water": 1.0}
    assert parse_answer("water, grass", values, "q") == {"water": 0.5, "grass": 0.5}
    assert parse_answer("water or grass or rails", values, "q") == pytest.approx(
        {v: 1 / 3 for v in values[:3]}
    )
    assert parse_answer("water 0.3, grass 0.7", values, "q") == pytest.approx({"water": 0.3, "grass": 0.7})
    with pytest.warns(AnswerWarning, match="sum to 4, not 1; divided by 4"):
        assert parse_answer({"water": 1, "grass": 3}, values, "q") == pytest.approx(
            {"water": 0.25, "grass": 0.75}
        )
    assert parse_answer(["water", "rails"], values, "q") == {"water": 0.5, "rails": 0.5}
    with pytest.warns(AnswerWarning, match="sum to 2"):
        assert parse_answer("water 1, grass 1", values, "q") == {"water": 0.5, "grass": 0.5}
    assert parse_answer(None, values, "q") is None
    assert parse_answer("", values, "q") is None and parse_answer("unknown", values, "q") is None
    with pytest.raises(ValueError, match=r"unknown value 'sand'; known: water, grass, rails, none"):
        parse_answer("water 0.5, sand 0.5", values, "q")
    with pytest.raises(ValueError, match="weights to some values only"):
        parse_answer("water 0.5, grass", values, "q")
    with pytest.raises(ValueError, match="negative"):
        parse_answer("water -0.5, grass 1", values, "q")
    assert parse_answer("water 30%, grass 70%", values, "q") == pytest.approx({"water": 0.3, "grass": 0.7})
    g = _hand_graph()
    with pytest.raises(ValueError, match=r"unknown entity 'c'; known: a, b, w"):
        answer(g, "c", "colour", "x")
    with pytest.raises(ValueError, match=r"unknown attribute 'shape' of a; known: colour, size, context"):
        answer(g, "a", "shape", "x")
    with pytest.raises(ValueError, match=r"answers: a\.colour: unknown value 'z'"):
        apply_answers(g, {"a": {"colour": "z"}})
    assert apply_answers(g, {"a.colour": "x", "b": "absent"}) == 2


def test_graph_json_round_trip_and_drawing(tiny_graph, tmp_path):
    answer(tiny_graph, "boat", "context", "water 0.3, grass 0.7")
    save_graph(tiny_graph, tmp_path / "g.json")
    loaded = load_graph(tmp_path / "g.json")
    assert loaded.to_json() == tiny_graph.to_json()
    assert loaded.relations[("boat", "context")].pinned
    assert json.loads((tmp_path / "g.json").read_text())["version"] == 1
    from wsss.synth.prompts.draw import draw_graph

    draw_graph(loaded, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_balanced_contexts_are_independent_of_the_class(tiny_graph):
    marginal = tiny_graph.meta["context_marginal"]
    assert tiny_graph.relations[("boat", "context")].candidates["water"] != pytest.approx(
        tiny_graph.relations[("train", "context")].candidates["water"]
    )
    balanced = balance_contexts(tiny_graph, 1.0)
    for c in ("boat", "train"):
        assert balanced.relations[(c, "context")].candidates == pytest.approx(marginal)
    half = balance_contexts(tiny_graph, 0.5).relations[("boat", "context")].candidates["water"]
    assert half == pytest.approx(0.5 * 3 / 15 + 0.5 * 3 / 16)
    prompts = sample_prompts(balanced, 3000, seed=1, context_only_share=0.2)
    alone = [p for p in prompts if not p["classes"]]
    assert len(alone) / len(prompts) == pytest.approx(0.2, abs=0.03)
    assert all(p["contexts"] and p["prompt"].startswith("a photo of") for p in alone)
    share = {}
    for c in ("boat", "train"):
        rows = [p for p in prompts if p["classes"][:1] == [c]]
        share[c] = sum("water" in p["contexts"] for p in rows) / len(rows)
    water = marginal["water"]
    assert share["boat"] == pytest.approx(water, abs=0.04) and share["train"] == pytest.approx(
        water, abs=0.04
    )
    biased = sample_prompts(tiny_graph, 3000, seed=1)
    train_rows = [p for p in biased if p["classes"][:1] == ["train"]]
    assert sum("water" in p["contexts"] for p in train_rows) / len(train_rows) < 0.1


def test_tool_writes_jsonl_graph_and_picture(tiny_captions, tmp_path, capsys):
    out, graph, picture = tmp_path / "p.jsonl", tmp_path / "g.json", tmp_path / "g.png"
    answers = tmp_path / "answers.yaml"
    answers.write_text("boat:\n  colour: red\n  context: water 1, grass 1\n", encoding="utf-8")
    code = main(["--captions", str(tiny_captions), "--answers", str(answers), "--n", "40", "--seed", "3",
                 "--out", str(out), "--graph-out", str(graph), "--draw", str(picture)])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "weights sum to 2" in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40
    for row in rows:
        assert set(row) == {"prompt", "classes", "contexts", "seed"}
        assert isinstance(row["prompt"], str) and isinstance(row["seed"], int)
        assert set(row["classes"]) <= {"boat", "train"} and row["classes"]
    boat_rows = [r for r in rows if r["classes"][0] == "boat"]
    assert all("red boat" in r["prompt"] for r in boat_rows)
    assert all(r["contexts"] in (["water"], ["grass"]) for r in boat_rows)
    assert load_graph(graph).relations[("boat", "context")].candidates["grass"] == pytest.approx(0.5)
    assert picture.stat().st_size > 0
    again = tmp_path / "again.jsonl"
    main(["--graph", str(graph), "--n", "40", "--seed", "3", "--out", str(again)])
    assert again.read_text() == out.read_text()


def test_interactive_mode_reads_answers_from_stdin(tiny_captions, tmp_path, monkeypatch, capsys, tiny_graph):
    first = rank_questions(tiny_graph)[0]
    values = list(target(tiny_graph, first.entity, first.name).candidates)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"nonsense\n{values[0]}\nunknown\n"))
    graph = tmp_path / "g.json"
    argv = ["--captions", str(tiny_captions), "--interactive", "--questions", "2", "--graph-out", str(graph)]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert f"Q1 [score {first.score:.3f}] {first.entity} {first.name}?" in shown
    assert "unknown value 'nonsense'" in shown and "Q2" in shown and "answered 1 questions" in shown
    loaded = load_graph(graph)
    item = target(loaded, first.entity, first.name)
    assert item.pinned and item.candidates[values[0]] == 1.0
    assert first.text(tiny_graph) in shown  # the candidates with their probabilities
    yes_no = rank_questions(tiny_graph, yes_no=True)[0]
    monkeypatch.setattr("sys.stdin", io.StringIO("maybe\ny\n"))
    assert main([*argv, "--yes-no", "--questions", "1"]) == 0
    assert "answer yes or no" in capsys.readouterr().out
    item = target(load_graph(graph), yes_no.entity, yes_no.name)
    assert item.pinned and item.candidates[yes_no.value] == 1.0


def test_tool_errors_are_one_line(tiny_captions, tmp_path, tool_error):
    other = tmp_path / "other.txt"
    other.write_text("background\ncat\ndog\n", encoding="utf-8")
    out = str(tmp_path / "p.jsonl")
    tool_error(main(["--captions", str(tiny_captions), "--classes", str(other), "--out", out]),
               r"no caption names any of the 2 classes \(cat, dog\)")  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text('{"boaat": {"colour": "red"}}', encoding="utf-8")
    tool_error(main(["--captions", str(tiny_captions), "--answers", str(bad), "--out", out]),
               r"bad\.json: unknown entity 'boaat'; known: boat, train, water")  # fmt: skip
    tool_error(main(["--captions", str(tmp_path / "missing.json"), "--out", out]), "captions file not found")
    tool_error(main(["--captions", str(tiny_captions)]), "nothing to write")
    tool_error(main(["--captions", str(tiny_captions), "--self-play", "--out", out]), "only prints its table")
    tool_error(main(["--captions", str(tiny_captions), "--balance-contexts", "--balance-strength", "2", "--out", out]),
               r"balance strength must lie in \[0, 1\], got 2")  # fmt: skip
    assert not Path(out).exists()


def test_labels_without_captions_use_templates(tmp_path):
    root = tmp_path / "voc"
    write_class_names(root / "class_names.txt", CLASSES)
    (root / "cls_labels.json").write_text(json.dumps({"a": [1], "b": [1, 2], "c": [2]}), encoding="utf-8")
    lexicon = make_lexicon()
    images, classes, _ = load_images(lexicon, data_root=root)
    g = build_graph(images, classes, lexicon)
    assert g.entities["boat"].probability == pytest.approx(3 / 5)
    assert g.entities["boat"].attributes["colour"].candidates == pytest.approx(
        {c: 1 / 12 for c in lexicon.colours}
    )
    assert g.entities["boat"].attributes["colour"].importance == 0.5
    assert g.relations[("boat", "with")].candidates == pytest.approx({"train": 2 / 4, NONE: 2 / 4})
    assert g.relations[("boat", "context")].importance == 0.5
    prompts = sample_prompts(g, 5, seed=0)
    assert all(p["prompt"].startswith("a photo of") and p["classes"] for p in prompts)
    # --split: only the images of a split list (the training images, not the validation ones)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    images, _, source = load_images(lexicon, data_root=root, split="train")
    assert sorted(image.image_id for image in images) == ["a", "b"] and source.endswith("(train split)")
    with pytest.raises(FileNotFoundError, match="val.txt: split list not found"):
        load_images(lexicon, data_root=root, split="val")


def _synthetic_captions(n: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    colours = {
        "boat": ["red", "red", "blue"],
        "train": ["green", "yellow"],
        "bird": ["blue", "grey", "brown"],
    }
    captions = {}
    for i in range(n):
        name = ["boat", "train", "bird"][i % 3]
        colour = colours[name][int(rng.integers(len(colours[name])))]
        where = {"boat": " on the water", "train": " on rails"}.get(name, "") if rng.random() < 0.8 else ""
        captions[f"im{i}"] = [f"a {colour} {name}{where}", f"a {name}{where}"]
    return captions


def test_self_play_nll_decreases_with_answers_and_beats_random(tmp_path):
    write_class_names(tmp_path / "class_names.txt", ("background", "boat", "train", "bird"))
    write_captions(tmp_path / "captions.json", _synthetic_captions(150, 0))
    lexicon = make_lexicon()
    images, classes, _ = load_images(lexicon, captions=tmp_path / "captions.json")
    train, held = split_holdout(images, 0.2, seed=0)
    prior = build_graph(train, classes, lexicon)
    truth = true_graph(held[0], prior)
    assert weighted_nll(prior, truth, prior) > 0
    result, count = self_play(prior, held, 4, seed=0)
    assert count == 30
    for rule in ("entropy", "random"):
        curve = np.array(result[rule])
        assert np.all(np.diff(curve) <= 1e-9) and curve[-1] < curve[0]
    assert result["entropy"][3] < result["random"][3]
    assert result["entropy"][0] == pytest.approx(result["random"][0])


def test_lexicon_file_extends_the_defaults(tiny_captions, tmp_path, tool_error):
    from wsss.synth.prompts.lexicon import load_lexicon

    spec = tmp_path / "lexicon.yaml"
    spec.write_text(
        "contexts:\n  ice:\n    words: [ice, glacier]\n    preposition: on\ncolours: [teal]\n",
        encoding="utf-8",
    )
    lexicon = load_lexicon(spec)
    assert "ice" in lexicon.contexts and "water" in lexicon.contexts and lexicon.colours[-1] == "teal"
    facts = CaptionReader(["boat"], lexicon).read("a teal boat on a glacier")
    assert facts.classes["boat"].colours == ["teal"] and facts.prepositions == {("boat", "ice"): "on"}
    spec.write_text("shapes: [round]\n", encoding="utf-8")
    tool_error(main(["--captions", str(tiny_captions), "--lexicon", str(spec), "--out", str(tmp_path / "p.jsonl")]),
               r"lexicon\.yaml: lexicon: unknown key 'shapes'")  # fmt: skip
