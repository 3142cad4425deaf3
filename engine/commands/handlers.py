"""One handler per `frelon` subcommand (frelon/cli.py parses, this module runs).

Every handler returns the process exit code. A problem the user can fix (FrelonError, ConfigError)
prints ONE line on stderr — `frelon: error: <message> — <hint>` — and exits 1 (2 for bad options);
the traceback only with --debug. Only events (with `--events -`) or the requested JSON go to stdout.

Each command checks the files and folders it will write before it starts (engine/outputs.py), and
any OSError that still escapes is one line too: `frelon: error: <file>: <reason> — <what to do>`.
Everything printed for a person passes through common/text.py's `printable`: a class or file name
holding a newline, an ESC sequence or a bidi override is shown escaped, never obeyed by the
terminal (the JSON on stdout stays exact).
"""
from __future__ import annotations

import json
import os
import sys
import traceback

from frelon.common.run_folder import CacheFolder, RunFolder
from frelon.common.text import printable
from frelon.common.train_config import ConfigError

from .console import print_report, say, scan_progress
from .train import cmd_train, given_train_options

def _fail(message: str, hint: str = "", debug: bool = False, code: int = 1) -> int:
    if debug:
        traceback.print_exc()
    say(f"frelon: error: {printable(message)}" + (f" — {printable(hint)}" if hint else ""))
    return code


def run_command(args) -> int:
    from ..errors import FrelonError
    handler = {"train": cmd_train, "check": cmd_check, "info": cmd_info, "predict": cmd_predict,
               "eval": cmd_eval, "export": cmd_export, "plan": cmd_plan,
               "lr-find": cmd_lr_find, "robustness": cmd_robustness, "preview-augment": cmd_preview_augment,
               "review": cmd_review, "annotations": cmd_annotations, "explain": cmd_explain,
               "cache": cmd_cache}[args.command]
    try:
        return handler(args)
    except ConfigError as e:
        return _fail(str(e), debug=getattr(args, "debug", False), code=2)
    except FrelonError as e:
        return _fail(e.message, e.hint, debug=getattr(args, "debug", False))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    except OSError as e:
        from ..outputs import oserror_line
        return _fail(*oserror_line(e), debug=getattr(args, "debug", False))


def _json_out(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- check / info

def cmd_check(args) -> int:
    from ..tasks import get_task, infer_task
    from ..data.probing import Pace, scanning
    task = get_task(args.task or infer_task(args.data))          # no torch: `check` stays quick
    cache = CacheFolder(args.out).probes if args.cache == "disk" else None
    with scanning(cache, Pace(scan_progress, every=0.2)):
        report = task.check(args.data, val_data=args.val_data or "", val_split=args.val_split, seed=args.seed,
                            workers=args.workers)
    if args.json:
        _json_out(report)
    else:
        print_report(report)
    # problems that make training impossible (e.g. a single class): say so, and fail
    for err in report.get("errors", []):
        say(f"frelon: error: {printable(err['message'])}" + (f" — {printable(err['hint'])}" if err.get("hint") else ""))
    return 1 if report.get("errors") else 0


def cmd_cache(args) -> int:
    from . import cache
    found = cache.clear(args.out) if args.clear else cache.summary(args.out)
    if args.json:
        _json_out(found)
        return 0
    mib = 2 ** 20
    probes, resized = found["probes"], found["resized"]
    print(f"{printable(found['folder'])}: {probes['files']} file check(s) remembered ({probes['bytes'] / mib:.1f} MiB), "
          f"{resized['copies']} resized copies ({resized['bytes'] / mib:.1f} MiB of {resized['limit_bytes'] / 2**30:.0f} GiB)"
          + (": cleared" if args.clear else ""))
    return 0


def cmd_info(args) -> int:
    from .info import gather
    info = gather()
    if args.json:
        _json_out(info)
        return 0
    for b in info["backbones"]:
        mark = "offline" if b["weights_available"] else "download"
        print(f"{b['name']:<20} {b['params'] / 1e6:6.1f}M  [{mark}] {printable(b['weights_source'])}")
    for g in info["devices"]["cuda"]:
        print(f"cuda:{g['index']} {printable(g['name'])} {g['total_memory'] / 2**30:.1f} GiB")
    print(f"cpu: {info['devices']['cpu']['cores']} cores, {info['devices']['cpu']['ram'] / 2**30:.1f} GiB")
    return 0


# ---------------------------------------------------------------- predict / eval / export / plan

def cmd_predict(args) -> int:
    from .predict import predict
    summary = predict(args.run, args.input, args.out, draw=args.draw, heatmaps=args.heatmaps,
                      checkpoint=args.checkpoint, device=args.device,
                      as_annotations=args.as_annotations, threshold=args.threshold)
    say(f"frelon: {summary['images']} image(s) -> {printable(args.out)}" +
        (f", {summary['skipped']} skipped" if summary.get("skipped") else ""))
    if args.json:
        _json_out(summary)
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_run
    metrics = evaluate_run(args.run, args.data, checkpoint=args.checkpoint, device=args.device)
    if args.json:
        _json_out(metrics)
    else:
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                print(f"{printable(k)}: {v:.4f}")
        for label, m in (metrics.get("per_label") or {}).items():       # multi-label
            ap = "–" if m["ap"] is None else f"{m['ap']:.4f}"
            print(f"  {printable(label)}: AP {ap}, F1 {m['f1']:.4f} at threshold {m['threshold']:.3f} ({m['support']} pictures)")
    return 0


def cmd_export(args) -> int:
    from .. import outputs                 # checked before torch is imported: a refusal is quick
    run = RunFolder(args.run)
    run_files = [str(p) for p in (run.config, run.model, run.events, run.checkpoint("best"), run.checkpoint("last"))]
    if args.out:
        outputs.result_file(args.out, "--out", inputs=run_files)
    elif os.path.isdir(args.run):
        outputs.writable_folder(str(run.export), "--out")
    if (args.max_drop is not None or args.calibration is not None) and not args.int8:
        raise ConfigError("--max-drop and --calibration go with --int8")
    if args.calibration is not None and args.calibration < 1:
        raise ConfigError(f"--calibration {args.calibration}: at least one picture")
    from .export import export_onnx
    result = export_onnx(args.run, out=args.out, checkpoint=args.checkpoint, int8=args.int8,
                         max_drop=args.max_drop, calibration=args.calibration)
    if result.get("int8"):
        from .int8 import words
        say(f"frelon: INT8 kept: {words(result['int8'])}")
    _json_out(result)
    return 0


def cmd_plan(args) -> int:
    from frelon.common import train_config as C
    from ..training.forecast import plan_memory
    cfg = C.resolve(given_train_options(args))
    result = plan_memory(cfg, budget=args.budget)
    if args.json:
        _json_out(result)
    else:
        for k, v in result.items():
            print(f"{printable(k)}: {printable(v)}")
    return 0


def cmd_lr_find(args) -> int:
    from frelon.common import train_config as C
    from .lr_find import lr_find
    cfg = C.resolve(given_train_options(args))

    def progress(step: int, lr: float, loss: float) -> None:
        if not args.json and (step % 10 == 0 or step == 1):
            print(f"step {step}: lr {lr:.3g}, smoothed loss {loss:.4f}", file=sys.stderr)

    sweep = {k: v for k, v in (("steps", args.steps), ("start_lr", args.start_lr), ("end_lr", args.end_lr))
             if v is not None}
    result = lr_find(cfg, progress=progress, **sweep)
    if args.json:
        _json_out(result)
    else:
        s = result["suggestion"]
        print(f"suggested effective LR {s['effective_lr']:.3g} at global batch {result['global_batch']} "
              f"({result['optimizer']}, {result['rule']}): --lr {s['lr']:.3g}\n"
              f"swept {result['steps']} steps from {result['start_lr']:.3g} to {result['end_lr']:.3g} "
              f"({result['stopped']}); lowest loss at {result['min_loss']['effective_lr']:.3g}")
    return 0


# ---------------------------------------------------------------- preview-augment

def cmd_preview_augment(args) -> int:
    from frelon.common import train_config as C
    from .. import outputs
    given = given_train_options(args)
    out = given.pop("out", None)
    if not out:
        raise ConfigError("preview-augment needs --out DIR: the folder for the preview's PNGs and preview.json")
    cfg = C.resolve(given)
    if cfg.data:                          # checked before torch is imported: a refusal is quick
        outputs.outside(out, cfg.data if os.path.isdir(cfg.data) else os.path.dirname(os.path.abspath(cfg.data)), "--out")
    outputs.writable_folder(out, "--out")
    from .preview import preview_augment
    counts = {k: v for k, v in (("images", args.images), ("count", args.count)) if v is not None}
    result = preview_augment(cfg, out, epoch=args.epoch, workers=max(0, cfg.workers), **counts)
    if args.json:
        _json_out(result)
    else:
        n = sum(len(i["variants"]) for i in result["images"])
        say(f"frelon: {n} augmented picture(s) of {len(result['images'])} training image(s) at "
             f"{result['size']} px -> {printable(out)}")
    return 0
# ---------------------------------------------------------------- robustness

def cmd_robustness(args) -> int:
    from .robustness import parse_eps, robustness_check
    if args.events == "-" and args.json:
        raise ConfigError("--events - and --json both want stdout: use one (the last event holds the result)")
    stream = None
    if args.events == "-":
        stream, sys.stdout = sys.stdout, sys.stderr      # stdout carries events only
    elif args.events:
        stream = open(args.events, "a", encoding="utf-8")
    from ..control import EventWriter
    writer = EventWriter(stream)
    if args.events != "-" and not args.json:
        writer.echo = lambda ev: ev["type"] == "robustness_eps" and print(
            f"ε {ev['eps']:g}/255: {ev['metric']} {ev['value']:.1%}"
            + (f" ({ev['flipped']} flipped so far)" if "flipped" in ev else ""), file=sys.stderr, flush=True)
    options = {k: v for k, v in (("steps", args.steps), ("step_size", args.step_size),
                                 ("examples", args.examples)) if v is not None}
    if os.path.isdir(args.run):            # its triptychs and <attack>.json go to RUN/robustness/
        from ..outputs import writable_folder
        writable_folder(os.path.join(args.run, "robustness"), "--run",
                        hint="copy the run to a folder you can write to, and give that")
    result = robustness_check(args.run, data=args.data, eps=parse_eps(args.eps), attack=args.attack,
                              checkpoint=args.checkpoint, device=args.device, emit=writer.emit, **options)
    if args.json:
        _json_out(result)
    elif args.events != "-":
        metric = result["metric"]
        print(f"frelon: {args.attack} on {result['images']} image(s), {metric}: "
              + ", ".join(f"ε {e:g} → {a:.1%}" for e, a in zip(result["eps"], result[metric]))
              + (f"; {len(result['flipped'])} flipped" if metric == "accuracy" else "")
              + f" -> {printable(args.run)}/robustness/", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- explain

def cmd_explain(args) -> int:
    from .explain import explain
    result = explain(args.run, args.input, out=args.out, class_name=args.class_name,
                     checkpoint=args.checkpoint, device=args.device)
    if args.json:
        _json_out(result)
    else:
        n = sum(len(e["maps"]) for e in result["images"])
        say(f"frelon: {n} map(s) of {len(result['images'])} picture(s) -> {printable(result['out'])}" +
            (f", {len(result['skipped'])} skipped" if result["skipped"] else ""))
    return 0


# ---------------------------------------------------------------- review / annotations

def cmd_review(args) -> int:
    if args.out:                          # checked before torch is imported: a refusal is quick
        from ..outputs import result_file
        result_file(args.out, "--out", inputs=[args.data])
    from .review import review_run
    result = review_run(args.run, args.data, splits=args.splits, checkpoint=args.checkpoint,
                        device=args.device, confidence=args.confidence)
    if args.out:
        from ..rundir import atomic_write_json
        from pathlib import Path
        atomic_write_json(Path(args.out), result)
    if args.json:
        _json_out(result)
    else:
        for entry in result["images"]:
            if entry["disagreement"] > 0:
                print(f"{entry['disagreement']:7.3f}  {printable(entry['file_name'])}: " +
                      ", ".join(f"{r} ×{entry['counts'][r]}" for r in entry["reasons"]))
    return 0


def cmd_annotations(args) -> int:
    from ..coco_writer import write_reviewed
    result = write_reviewed(args.data, out=args.out, force=args.force)
    if args.json:
        _json_out(result)
    else:
        print(f"frelon: {result['images']} image(s), {result['annotations']} box(es) -> {printable(result['path'])}" +
              ("" if result["created"] else " (kept: it holds earlier edits; --force rewrites it)"), file=sys.stderr)
    return 0
