"""The `frelon` command line: no arguments opens the app; subcommands run the engine headless.

This module imports neither torch nor Qt: each command imports what it needs when it runs, so
`frelon` opens the app fast and the headless commands never load Qt.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from frelon.common.choices import ATTACKS, CHOICES, TASKS
from frelon.common.option import flag_name, kind_of, spec_of
from frelon.common.run_folder import CHECKPOINTS, SCORE_THRESHOLD
from frelon.common.train_config import TrainConfig

def _add_model_options(p: argparse.ArgumentParser) -> None:
    """Which of a run's checkpoints, on which device: the commands that load a finished run."""
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument("--device", choices=CHOICES["device"], default="auto")


def _add_train_options(p: argparse.ArgumentParser, out_help: str = "runs folder") -> None:
    """The options shared by `train`, `plan`, `lr-find` and `preview-augment`: one per field of
    TrainConfig (common/train_config.py), with its help and choices. Every option defaults to 'not
    given' so that --config FILE and the defaults can fill in; the values are checked there."""
    for f in fields(TrainConfig):
        s = spec_of(f)
        if not s.flag:
            continue
        kind, kw = kind_of(f), {"default": argparse.SUPPRESS}
        if s.help or (f.name == "out" and out_help):
            kw["help"] = out_help if f.name == "out" else s.help
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction if f.default is True else "store_true"
        elif s.choices:
            kw["choices"] = [c for c in s.choices if c]       # "" = not given
        elif kind in (int, float) and not s.word:
            kw["type"] = kind
        p.add_argument(flag_name(f.name), **kw)
        if f.name == "name":
            p.add_argument("--config", default=argparse.SUPPRESS, help="a JSON file of options; command-line options win")


def _add_answer_options(p: argparse.ArgumentParser, json: bool = True) -> None:
    """The last options of most commands: the answer as JSON on stdout, tracebacks on stderr."""
    if json:
        p.add_argument("--json", action="store_true")
    p.add_argument("--debug", action="store_true")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a classifier or train a CenterNet detector")
    _add_train_options(p)
    p.add_argument("--resume", default=None, help="a run folder to continue exactly")
    p.add_argument("--events", default=None, help="'-' streams events on stdout; or a FILE")
    p.add_argument("--control", choices=["stdin"], default=None, help="read 'stop' from stdin")
    p.add_argument("--print-launch", action="store_true", help="print the launch command and exit")
    p.add_argument("--debug", action="store_true", help="tracebacks on stderr")
    p.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)  # set by the multi-rank launcher


def _add_check(sub) -> None:
    p = sub.add_parser("check", help="data doctor: counts, bad files, duplicates, leaks")
    p.add_argument("--data", required=True)
    p.add_argument("--task", choices=TASKS, default=None)
    p.add_argument("--val-data", default=None)
    p.add_argument("--val-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default="runs", help="the runs folder whose .cache/ remembers each file's check "
                                                 "(default: runs)")
    p.add_argument("--cache", choices=CHOICES["cache"], default="disk",
                   help="disk = remember each file's check (a second check of unchanged files is quick); off")
    _add_answer_options(p)


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="what the runs folder's .cache/ holds (remembered checks, resized copies)")
    p.add_argument("--out", default="runs", help="the runs folder (default: runs; FRELON_CACHE puts the cache elsewhere)")
    p.add_argument("--clear", action="store_true", help="remove the remembered checks and the resized copies")
    _add_answer_options(p)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="run a trained model on images, a folder or a COCO JSON")
    p.add_argument("--run", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--draw", default=None, help="folder for images with the predictions drawn")
    p.add_argument("--heatmaps", default=None, help="folder for detection heatmaps (PNG)")
    p.add_argument("--as-annotations", default=None, metavar="OUT.json",
                   help="detection: also write the boxes scoring >= --threshold as draft COCO annotations")
    p.add_argument("--threshold", type=float, default=SCORE_THRESHOLD,
                   help=f"score of a draft annotation (default {SCORE_THRESHOLD:g})")
    _add_model_options(p)
    _add_answer_options(p)


def _add_eval_export_info(sub) -> None:
    p = sub.add_parser("eval", help="metrics of a trained model on a labelled set")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    _add_model_options(p)
    _add_answer_options(p)

    p = sub.add_parser("export", help="export a trained model (checked against PyTorch)")
    p.add_argument("--run", required=True)
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument("--out", default=None)
    p.add_argument("--int8", action="store_true",
                   help="also an INT8 model (onnxruntime static quantization, calibrated on training pictures) beside it, "
                        "its accuracy on the validation split, size and CPU latency beside the float model's")
    # defaults: engine/commands/int8.py (0.02, 64 pictures)
    p.add_argument("--max-drop", type=float, default=None,
                   help="refuse the INT8 model when it loses more than this (accuracy as a fraction; default 0.02)")
    p.add_argument("--calibration", type=int, default=None, help="training pictures to calibrate on (default 64)")
    _add_answer_options(p, json=False)

    p = sub.add_parser("info", help="devices, backbones and whether their weights are offline")
    _add_answer_options(p)


def _add_plan_lr_find(sub) -> None:
    p = sub.add_parser("plan", help="memory forecast: peak per device, largest batch that fits")
    _add_train_options(p)
    p.add_argument("--budget", default=None, help="e.g. 8GiB (default: free GPU memory, or RAM)")
    _add_answer_options(p)

    p = sub.add_parser("lr-find", help="LR range test: loss against an exponentially growing LR, and a suggestion")
    _add_train_options(p)
    # defaults: engine/commands/lr_find.py (100 steps, 1e-7 to 10)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps of the sweep (default 100)")
    p.add_argument("--start-lr", type=float, default=None)
    p.add_argument("--end-lr", type=float, default=None)
    _add_answer_options(p)


def _add_review_annotations(sub) -> None:
    p = sub.add_parser("review", help="detection: images ranked by how much a run disagrees with their annotations")
    p.add_argument("--run", required=True)
    p.add_argument("--data", default=None, help="the annotations to review (default: the run's training data)")
    p.add_argument("--splits", choices=["val", "train", "all"], default=None,
                   help="which images, split as the run split them (default: val on the run's own data, all of another set)")
    p.add_argument("--confidence", type=float, default=SCORE_THRESHOLD,
                   help=f"a detection this sure counts as the model's word (default {SCORE_THRESHOLD:g}, the app's score slider)")
    p.add_argument("--out", default=None, help="also write the review as JSON to this file")
    _add_model_options(p)
    _add_answer_options(p)

    p = sub.add_parser("annotations", help="detection: a set of any layout saved as one COCO JSON (the reviewed copy)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=None, help="default: annotations.reviewed.json beside the COCO JSON, or in the folder")
    p.add_argument("--force", action="store_true", help="rewrite an existing reviewed copy from the original")
    _add_answer_options(p)


def _add_preview_augment(sub) -> None:
    p = sub.add_parser("preview-augment", help="training images as the training pipeline augments them (PNG)")
    _add_train_options(p, out_help="folder for the preview: <image>-<variant>.png and preview.json (required)")
    # defaults: engine/commands/preview.py (2 images, 6 variants)
    p.add_argument("--images", type=int, default=None, help="training images shown (default 2)")
    p.add_argument("--count", type=int, default=None, help="variants of each image (default 6)")
    p.add_argument("--epoch", type=int, default=0,
                   help="variant j is the image as epoch EPOCH + j would see it (a later epoch re-draws)")
    _add_answer_options(p)


def _add_robustness(sub) -> None:
    p = sub.add_parser("robustness", help="accuracy (classifier) or mAP@0.5 (detector) under FGSM / PGD attacks of growing size ε")
    p.add_argument("--run", required=True)
    p.add_argument("--data", default=None, help="a labelled set (default: the run's validation split)")
    # defaults: engine/commands/robustness.py (ε 0,0.5,1,2,4,8; 6 pictures) and engine/attacks.py (PGD 10 steps)
    p.add_argument("--eps", default=None, help="ε in 8-bit pixel levels, comma-separated (default 0,0.5,1,2,4,8)")
    p.add_argument("--attack", choices=ATTACKS, default=ATTACKS[0])
    p.add_argument("--steps", type=int, default=None, help="PGD steps (default 10)")
    p.add_argument("--step-size", type=float, default=None, help="PGD step in 8-bit levels (default 2.5 × ε / steps)")
    p.add_argument("--examples", type=int, default=None, help="flipped images drawn as triptychs (default 6)")
    _add_model_options(p)
    p.add_argument("--events", default=None, help="'-' streams robustness_eps / robustness_finished events")
    _add_answer_options(p)


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="where a trained model looks: Grad-CAM (classifier) or its heatmap (detector) over each picture (PNG)")
    p.add_argument("--run", required=True)
    p.add_argument("--input", required=True, action="extend", nargs="+",
                   help="pictures, folders or a COCO JSON (several may follow, or --input again)")
    p.add_argument("--out", default=None, help="folder for the PNGs and explain.json (default RUN/explain/)")
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="map this class (default: the predicted one; a detector: every class's heat)")
    _add_model_options(p)
    _add_answer_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frelon",
        description="Frelon: fine-tune image models on your own photos. With no command, opens the app.")
    sub = parser.add_subparsers(dest="command")
    # one builder per subcommand (or a few small ones), in the order `frelon --help` lists them
    for add in (_add_train, _add_check, _add_predict, _add_eval_export_info, _add_plan_lr_find,
                _add_review_annotations, _add_preview_augment, _add_robustness, _add_explain, _add_cache):
        add(sub)
    p = sub.add_parser("gui", help="open the app (the same as no command)")
    p.add_argument("--runs", default=None, help="runs folder shown in the app")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        # before any QApplication: Qt aborts (exit 134) when it cannot reach a display or load its
        # platform plugin; say why in one line instead
        from frelon.gui.display import display_problem
        problem = display_problem()
        if problem:
            print(f"frelon: error: {problem}", file=sys.stderr)
            return 1
        from frelon.gui.app import main as gui_main
        return gui_main(getattr(args, "runs", None))
    from frelon.engine.commands.handlers import run_command
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
