"""What a person reads on the terminal: the training echo (one line per epoch and the news, when
no `--events -` stream is asked for; the best epoch's figures at the end), `frelon check`'s report,
and `say` for lines on stderr.

Every name that comes from the data (classes, files, warnings, log messages) passes through
common/text.py's `printable`: a newline, an ESC sequence or a bidi override in it is shown
escaped, never obeyed by the terminal. The JSON answers and the events carry the exact text.
"""
from __future__ import annotations

import sys

from frelon.common.balance import in_words
from frelon.common.text import printable


def say(*lines: str) -> None:
    """Lines for a person, on stderr (each already made `printable` where it holds outside text)."""
    print("\n".join(lines), file=sys.stderr, flush=True)


def training_line(event: dict) -> None:
    """Without --events -, a person is reading: a short line per epoch and the important news
    (names from the data made `printable`)."""
    t = event["type"]
    p = printable
    if t == "run_started":
        lines = [f"training {p(event['backbone'])} ({event['task']}) on {event['device']}, {len(event['classes'])} classes, "
                 f"global batch {event['global_batch']}, effective LR {p(event.get('lr_rule') or format(event['effective_lr'], '.3g'))}"
                 f" (new parts ×{event.get('head_lr_mult', 1):g}), "
                 f"{event['total_steps']} steps -> {p(event['run_dir'])}"]
    elif t == "data_report":
        counts = {p(s): v.get("images") for s, v in event["splits"].items()}
        lines = [f"data: {counts}, {len(event['skipped'])} file(s) skipped"] + [f"  warning: {p(w)}" for w in event["warnings"]]
    elif t == "epoch_end":
        val = event["val"]
        metric = " ".join(f"{k} {val[k]:.4f}" for k in ("loss", "accuracy", "balanced_accuracy", "map", "map_50", "f1")
                          if isinstance(val.get(k), (int, float)))
        lines = [f"epoch {event['epoch'] + 1}: train loss {event['train_loss']:.4f}" + (f", val {metric}" if metric else "")]
    elif t == "log" and event["level"] != "debug":
        lines = [f"{p(event['level'])}: {p(event['message'])}"]
    else:
        return
    say(*lines)


def scan_progress(done: int, total: int, eta_s: float | None) -> None:
    """`frelon check`'s progress on a terminal (stderr, one line redrawn); nothing when piped."""
    if not sys.stderr.isatty():
        return
    eta = f" · about {eta_s:.0f} s left" if eta_s else ""
    end = "\n" if done >= total else ""
    print(f"\rchecking pictures: {done} / {total}{eta}\033[K", end=end, file=sys.stderr, flush=True)


def print_report(report: dict) -> None:
    p = printable
    print(f"{report['task']} data in {p(report['root'])} ({report['layout']}), classes: {', '.join(p(c) for c in report['classes'])}")
    for split, v in report["splits"].items():
        counts = ", ".join(f"{p(c)} {n}" for c, n in v["counts"].items())
        print(f"  {p(split)}: {v['images']} images ({counts})")
    if report.get("label_sets"):                        # multi-label data: pictures by their number of labels
        print("  labels per picture: " + ", ".join(f"{n}: {k} picture(s)" for n, k in report["label_sets"].items()))
    if report.get("imbalance"):
        print(f"  balance: {p(in_words(report['imbalance']['balance'], report['imbalance']))}")
    for s in report["skipped"]:
        print(f"  skipped {p(s['path'])}: {p(s['reason'])}")
    for w in report["warnings"]:
        print(f"  warning: {p(w)}")


def best_in_words(best: dict | None) -> str:
    """'; best epoch 3: accuracy 0.9000, balanced_accuracy 0.8500' (its validation figures), or ''."""
    p = printable
    figures = {k: v for k, v in ((best or {}).get("metrics") or {}).items() if k not in ("loss", "images")}
    if not figures:
        return ""
    return f"; best epoch {best['epoch'] + 1}: " + ", ".join(f"{p(k)} {v:.4f}" for k, v in figures.items())
