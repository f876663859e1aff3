"""Plan text-to-image prompts with a belief graph estimated from a dataset's captions and labels (no LLM)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

from wsss.cli.common import UserError, check_output_file, check_positive, entry_point, make_parser
from wsss.fileio import write_text_atomic
from wsss.synth.prompts.answers import AnswerWarning, answer, apply_answers, apply_yes_no, close, parse_yes_no
from wsss.synth.prompts.build import build_graph
from wsss.synth.prompts.draw import draw_graph
from wsss.synth.prompts.graph import BeliefGraph, load_graph, save_graph
from wsss.synth.prompts.lexicon import load_lexicon, read_mapping_file
from wsss.synth.prompts.questions import next_question
from wsss.synth.prompts.sampling import balance_contexts, sample_prompts
from wsss.synth.prompts.selfplay import format_table, self_play, split_holdout
from wsss.synth.prompts.sources import load_images

DESCRIPTION = (
    "Build a belief graph (classes, contexts such as water or rails, their colour / size / count and "
    "class-context / class-class relations) from a dataset's captions and image-level labels, ask the most "
    "useful questions (or read the answers from a file), and sample prompts for a text-to-image generator "
    "as JSONL lines {prompt, classes, contexts, seed}. Answers: 'red', 'red, blue' (uniform), "
    "'water 0.3, grass 0.7' (a mixture; normalised with a warning when it does not sum to 1), 'unknown', "
    "'absent'. --balance-contexts draws contexts independently of the class and adds context-only prompts. "
    "--self-play measures how fast questions recover held-out captions (importance-weighted NLL).\n\n"
    "  python tools/plan_prompts.py --data-root data/shapes --interactive --questions 5 --n 1000 "
    "--out prompts.jsonl --graph-out graph.json --draw graph.png\n"
    "  python tools/plan_prompts.py --data-root data/shapes --self-play --questions 8"
)
MAX_TRIES = 3


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--captions", type=Path, metavar="FILE", help="COCO-format captions json")
    source.add_argument("--data-root", type=Path, metavar="DIR",
                        help="VOC-layout folder: its captions.json if present, class names and cls_labels.json")  # fmt: skip
    source.add_argument("--graph", type=Path, metavar="FILE", help="a belief graph saved with --graph-out")
    parser.add_argument(
        "--classes", help="class list: voc, coco or a class_names.txt (default: the dataset's)"
    )
    parser.add_argument("--split", help="with --data-root: only the images of this split list (e.g. train)")
    parser.add_argument("--lexicon", type=Path, metavar="FILE",
                        help="JSON/YAML adding contexts, colours, sizes, synonyms (see wsss.synth.prompts.lexicon)")  # fmt: skip
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="Dirichlet smoothing of candidates (default 1)"
    )
    parser.add_argument("--answers", type=Path, metavar="FILE", help="answers in YAML or JSON, applied first")
    parser.add_argument("--interactive", action="store_true", help="ask questions in the terminal")
    parser.add_argument("--questions", type=int, default=5, metavar="N", help="questions to ask (default 5)")
    parser.add_argument("--yes-no", action="store_true", help="ask yes/no questions about single values")
    parser.add_argument("--n", type=int, default=100, help="prompts to sample (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompts and their image seeds")
    parser.add_argument("--out", type=Path, metavar="FILE.jsonl", help="where the prompts go")
    parser.add_argument(
        "--graph-out", type=Path, metavar="FILE.json", help="save the belief graph after answers"
    )
    parser.add_argument("--draw", type=Path, metavar="FILE.png", help="draw the belief graph")
    parser.add_argument("--balance-contexts", action="store_true",
                        help="counter-bias: P(context | class) -> (1 - s) P(context | class) + s P(context)")  # fmt: skip
    parser.add_argument("--balance-strength", type=float, default=1.0, metavar="S",
                        help="s in [0, 1] of --balance-contexts (default 1: independent of the class)")  # fmt: skip
    parser.add_argument("--context-only-share", type=float, default=None, metavar="F",
                        help="share of prompts with a context and no class (default 0.1 with --balance-contexts, else 0)")  # fmt: skip
    parser.add_argument("--self-play", action="store_true",
                        help="print the NLL of held-out captions after 0..--questions questions, entropy rule vs random")  # fmt: skip
    parser.add_argument("--holdout", type=float, default=0.2, help="share of images held out by --self-play")
    return parser


def _ask(graph: BeliefGraph, count: int, yes_no: bool) -> int:
    """Ask up to ``count`` questions on stdin/stdout; returns how many were answered."""
    answered = 0
    for index in range(1, count + 1):
        question = next_question(graph, "entropy", yes_no=yes_no)
        if question is None:
            print("no open question left")
            break
        print(f"Q{index} [score {question.score:.3f}] {question.text(graph)}")
        for _ in range(MAX_TRIES):
            try:
                reply = input("> ")
            except EOFError:
                return answered
            try:
                if yes_no:
                    verdict = parse_yes_no(reply)
                    if verdict is None:
                        raise ValueError("answer yes or no")
                    apply_yes_no(graph, question, verdict)
                    answered += 1
                elif answer(graph, question.entity, question.name, reply):
                    answered += 1
                else:
                    close(graph, question)
                break
            except ValueError as err:
                print(f"  {err}")
        else:
            close(graph, question)
    return answered


def _warning_lines(fn, *args):
    """``fn(*args)``, printing each answer warning it raised as one ``warning:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AnswerWarning)
        result = fn(*args)
    for warning in caught:
        if issubclass(warning.category, AnswerWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    return result


def _summary(prompts: list[dict]) -> str:
    per_class, with_context = Counter(), Counter()
    for row in prompts:
        for name in row["classes"][:1]:
            per_class[name] += 1
            with_context[(name, row["contexts"][0] if row["contexts"] else "none")] += 1
    alone = sum(1 for row in prompts if not row["classes"])
    lines = [f"{len(prompts)} prompts ({alone} context-only); main class: share of each context"]
    total = sum(per_class.values())
    contexts = sorted({k for (_, k), n in with_context.items() if n >= 0.01 * total})
    for name, total in sorted(per_class.items()):
        lines.append(
            f"  {name:>12}: " + ", ".join(f"{k} {with_context[(name, k)] / total:.2f}" for k in contexts)
        )
    return "\n".join(lines)


def plan(args: argparse.Namespace) -> int:
    check_positive(args.n, "--n")
    check_positive(args.questions, "--questions", 0)
    if args.alpha < 0:
        raise UserError(f"--alpha must be >= 0, got {args.alpha}")
    for path, flag in ((args.out, "--out"), (args.graph_out, "--graph-out"), (args.draw, "--draw")):
        check_output_file(path, flag)
    if not args.self_play and args.out is None and args.graph_out is None and args.draw is None:
        raise UserError(
            "nothing to write: give --out FILE.jsonl (and/or --graph-out, --draw), or --self-play"
        )
    if args.self_play and (args.out or args.answers or args.interactive):
        raise UserError("--self-play only prints its table; drop --out, --answers and --interactive")
    lexicon = load_lexicon(args.lexicon)
    if args.graph is not None:
        if args.self_play:
            raise UserError(
                "--self-play needs the captions: give --captions or --data-root instead of --graph"
            )
        graph = load_graph(args.graph)
    else:
        images, classes, source = load_images(
            lexicon, args.captions, args.data_root, args.classes, args.split
        )
        if args.self_play:
            train, held_out = split_holdout(images, args.holdout, args.seed)
            prior = build_graph(train, classes, lexicon, args.alpha, source)
            result, count = self_play(prior, held_out, args.questions, args.seed)
            print(f"self-play on {count} held-out images of {source} (graph from {len(train)} images); "
                  "mean importance-weighted NLL of the true graph:")  # fmt: skip
            print(format_table(result))
            return 0
        graph = build_graph(images, classes, lexicon, args.alpha, source)
    if args.answers is not None:
        answers = read_mapping_file(args.answers, "answers")
        changed = _warning_lines(apply_answers, graph, answers, str(args.answers))
        print(f"applied {changed} answers from {args.answers}")
    if args.interactive:
        print(f"answered {_warning_lines(_ask, graph, args.questions, args.yes_no)} questions")
    if args.graph_out is not None:
        save_graph(graph, args.graph_out)
    if args.draw is not None:
        draw_graph(graph, args.draw)
    if args.out is not None:
        share = (
            args.context_only_share
            if args.context_only_share is not None
            else (0.1 if args.balance_contexts else 0.0)
        )
        sampled = balance_contexts(graph, args.balance_strength) if args.balance_contexts else graph
        prompts = sample_prompts(sampled, args.n, args.seed, share)
        write_text_atomic(args.out, "".join(json.dumps(row) + "\n" for row in prompts))
        print(f"wrote {args.out}: " + _summary(prompts))
    return 0


main = entry_point(plan, build_parser)


if __name__ == "__main__":
    sys.exit(main())
