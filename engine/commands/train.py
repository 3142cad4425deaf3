"""`frelon train`: options read (or a run's own, for --resume), outputs checked, then the run in
this process, on several local ranks (launch.py), or only the launch commands (`--print-launch`:
torchrun per machine and a SLURM batch script). Errors go up to handlers.run_command, which turns
them into one line."""
from __future__ import annotations

import os
import shlex
import sys
import traceback

from frelon.common.run_folder import RunFolder, run_name
from frelon.common.text import printable
from frelon.common.train_config import FIELDS, RESUMABLE, ConfigError, to_flags

from .console import best_in_words, say, training_line

TRAIN_KEYS = set(FIELDS) | {"config"}     # the options `frelon train` takes from its command line


def given_train_options(args) -> dict:
    return {k: v for k, v in vars(args).items() if k in TRAIN_KEYS}


def cmd_train(args) -> int:
    from frelon.common import train_config as C
    given = given_train_options(args)
    if args.resume:
        unknown = sorted(set(given) - RESUMABLE)
        if unknown:
            raise ConfigError(f"--resume continues a run with its own options; these cannot change: "
                              f"{', '.join('--' + k.replace('_', '-') for k in unknown)}")
        from ..rundir import read_json
        saved = RunFolder(args.resume).config
        cfg = C.from_dict(given, C.from_saved(read_json(saved), source=str(saved)))
    else:
        cfg = C.resolve(given)

    launched = "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ     # started by torchrun
    world = cfg.world_size
    if args.print_launch:
        return _print_launch(cfg, world)
    from ..outputs import writable_folder
    if args.resume:                       # (read above: it exists)
        writable_folder(args.resume, "--resume", hint="copy the run to a folder you can write to, and resume that")
    else:
        writable_folder(cfg.out, "--out")
    if world > 1 and not launched:
        _refuse_impossible_ranks(cfg)
        from ..launch import run_ranks
        argv = sys.argv[2:] if sys.argv[1:2] == ["train"] else _argv_from(args)
        if args.resume:
            return run_ranks(argv, world, runs_dir=None, name="", stream_events=args.events == "-",
                             control_stdin=args.control == "stdin", run_dir=args.resume,
                             stall_timeout=cfg.stall_timeout)
        name = run_name(cfg.name, cfg.backbone, cfg.data, cfg.task)
        return run_ranks(argv, world, cfg.out, name, stream_events=args.events == "-",
                         control_stdin=args.control == "stdin", stall_timeout=cfg.stall_timeout)
    return _train_here(args, cfg, given)


def _print_launch(cfg, world: int) -> int:
    """The torchrun command for each machine, on stdout; beside it, in the current folder, the
    SLURM batch script doing the same on N nodes (launch.sbatch_script). Starts nothing."""
    from pathlib import Path

    from ..launch import launch_command, sbatch_script
    argv = [a for a in sys.argv[2:] if a != "--print-launch"] if sys.argv[1:2] == ["train"] else []
    print("# run this on each of $NNODES machines, with NODE_RANK = 0 … NNODES-1, MASTER_ADDR = the\n"
          "# address of machine 0 and the same JOB_ID everywhere (see README, 'Several GPUs, several machines')")
    # quoted for the shell, except the $VARIABLES the user's job script fills in
    print(" ".join(a if a.startswith("$") else shlex.quote(a)
                   for a in launch_command(argv, world, None, multinode=True)))
    from ..rundir import safe_name
    name = run_name(cfg.name, cfg.backbone, cfg.data, cfg.task)
    script = Path(f"frelon-{safe_name(name)}.sbatch").resolve()
    script.write_text(sbatch_script(argv, world, cfg.out, name, gpus=cfg.gpus > 0), encoding="utf-8")
    print(f"# SLURM, N machines (the batch script it wrote): sbatch --nodes=N {shlex.quote(str(script))}")
    return 0


def _refuse_impossible_ranks(cfg) -> None:
    if cfg.gpus > 1:
        import torch
        from ..errors import ConfigurationError
        found = torch.cuda.device_count()
        if found < cfg.gpus:
            raise ConfigurationError(f"--gpus {cfg.gpus} asked for, but {found} GPU(s) are visible",
                                     hint="lower --gpus" + (" (or use --processes N for CPU ranks)" if found == 0 else ""))


def _argv_from(args) -> list[str]:
    return to_flags(given_train_options(args))


def _train_here(args, cfg, given) -> int:
    from ..control import EventWriter, StopFlag
    from ..training.run import RunFailed, run_training
    rank = int(os.environ.get("RANK", "0"))
    events_stream = None
    if args.events == "-":
        # stdout carries events only: everything else printed from here on goes to stderr
        events_stream = sys.stdout
        sys.stdout = sys.stderr
    elif args.events:
        events_stream = open(args.events, "a", encoding="utf-8")
    writer = EventWriter(events_stream if rank == 0 else None, enabled=rank == 0)
    if rank == 0 and args.events != "-":
        writer.echo = training_line
    stop = StopFlag()
    stop.watch_signals()
    if args.control == "stdin" and rank == 0:
        stop.watch_stdin()
    overrides = {k: v for k, v in given.items() if k in RESUMABLE} if args.resume else None
    try:
        fields = run_training(cfg, writer, stop, resume=args.resume, run_dir=args.run_dir,
                              resume_overrides=overrides)
    except RunFailed as e:
        if args.debug and e.__cause__ is not None:
            traceback.print_exception(e.__cause__, file=sys.stderr)
        say(f"frelon: error: {printable(e)}")
        return 1
    if rank == 0:
        say(f"frelon: run {fields['status']} after {fields['epochs_done']} epoch(s): {printable(fields['run_dir'])}"
            + best_in_words(fields.get("best")))
    return 0
