"""Starting several ranks: `frelon train --gpus N` / `--processes N` runs this launcher.

The launcher creates the run folder, then runs torchrun (`torch.distributed.run --standalone`)
with N copies of the same `frelon train` command, each told the run folder. It stays in between
the caller and the ranks: `stop` lines and the end of its stdin reach rank 0 (which tells the others
through the per-step collective), SIGINT / SIGTERM become a `stop`. When a rank dies, torchrun
ends the others and the launcher writes the `error` event naming the rank (of the rank's own kind
when it left one, else `distributed`), then `run_finished` `failed`. While the ranks run, the
watchdog (watchdog.py) reads their heartbeats, writes `heartbeat` events, and ends a stalled run
with an `error` of kind `stall`. No rank outlives the launcher; it writes events through the
engine's own EventWriter.

`launch_command` is also what `--print-launch` prints, with the rendezvous flags for several
machines, beside the SLURM batch script of `sbatch_script` (see README, "Several GPUs, several
machines").
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import psutil

from frelon.common import events
from frelon.common.run_folder import RunFolder
from .control import EventWriter, StopFlag
from .rundir import new_run_dir, read_rank_error, safe_name
from .watchdog import Watchdog, stall_error

STOP_GRACE_S = 60          # after a stop request, how long the ranks get to save and end


def launch_command(argv: list[str], nproc: int, run_dir: str | None, multinode: bool = False) -> list[str]:
    rdzv = (["--nnodes", "$NNODES", "--node-rank", "$NODE_RANK", "--rdzv-backend", "c10d",
             "--rdzv-endpoint", "$MASTER_ADDR:29500", "--rdzv-id", "$JOB_ID"] if multinode else ["--standalone"])
    cmd = [sys.executable, "-m", "torch.distributed.run", *rdzv, "--nproc-per-node", str(nproc),
           "-m", "frelon", "train", *argv]
    if run_dir:
        cmd += ["--run-dir", run_dir]
    return cmd


SBATCH_NODES = 2          # the script's default; `sbatch --nodes=N FILE` overrides it
RDZV_PORT = 29500


def sbatch_script(argv: list[str], per_node: int, out: str, name: str, gpus: bool = True,
                  python: str = sys.executable) -> str:
    """A SLURM batch script training `frelon train argv` on N nodes × `per_node` ranks (GPUs, or
    with `gpus` False CPU ranks).

    srun starts one task per node (--ntasks-per-node=1); each runs torchrun, which starts the
    node's ranks. They meet through torchrun's c10d rendezvous on the job's first node: no
    per-node rank to compute (a `$SLURM_NODEID` expanded in the batch script, which runs on the
    first node only, is 0 everywhere — the classic mistake). The run folder, $OUT/NAME-JOBID, must
    be on storage every node sees; named after the job, it is found again when SLURM requeues the
    job (a preempted or failed node: --requeue keeps the job id), which then resumes from its last
    checkpoint. `argv` holding --resume RUN resumes that run instead."""
    q, name = shlex.quote, safe_name(name)
    resume = argv[argv.index("--resume") + 1] if "--resume" in argv else None
    nccl = {k: v for k, v in _rank_environment(per_node, Path("$RUN_DIR")).items() if k.startswith("TORCH_NCCL_")}
    what = f"{per_node} GPUs" if gpus else f"{per_node} CPU ranks"
    lines = ["#!/bin/bash",
             f"# Frelon on SLURM, N nodes x {what}: sbatch --nodes=N {q('frelon-' + name + '.sbatch')}",
             "# (written by frelon train --print-launch; see README, 'Several GPUs, several machines').",
             f"#SBATCH --job-name={q('frelon-' + name)}", f"#SBATCH --nodes={SBATCH_NODES}",
             "#SBATCH --ntasks-per-node=1", *([f"#SBATCH --gpus-per-node={per_node}"] if gpus else []),
             "#SBATCH --requeue", "#SBATCH --open-mode=append", "#SBATCH --output=%x-%j.log",
             "set -euo pipefail",
             f"RUN_DIR={q(resume) if resume else q(str(Path(out).resolve() / name)) + '-$SLURM_JOB_ID'}"
             "      # on storage every node sees",
             'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
             f"export MASTER_PORT=${{MASTER_PORT:-{RDZV_PORT}}}",
             f"export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-$(( $(nproc) / {per_node} > 0 ? $(nproc) / {per_node} : 1 ))}}",
             *(f'export {k}="{v}"' for k, v in nccl.items())]
    if resume:
        lines.append('TRAIN=(--resume "$RUN_DIR")')
    else:
        lines += ['if [ -f "$RUN_DIR/checkpoints/last.safetensors" ]; then',
                  '    TRAIN=(--resume "$RUN_DIR")          # requeued: continue from its last checkpoint',
                  "else",
                  f'    TRAIN=({" ".join(q(a) for a in argv)} --run-dir "$RUN_DIR")',
                  "fi"]
    lines += [f"srun --kill-on-bad-exit=1 {q(python)} -m torch.distributed.run --nnodes \"$SLURM_NNODES\" \\",
              '    --rdzv-backend c10d --rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "$SLURM_JOB_ID" \\',
              f'    --nproc-per-node {per_node} -m frelon train "${{TRAIN[@]}}"']
    return "\n".join(lines) + "\n"


def _failures(stderr_lines: list[str]) -> list[tuple[int, int]]:
    """(rank, exit code) of every failed rank in torchrun's summary, its "Root Cause" first."""
    def parse(lines):
        found, rank = [], None
        for line in lines:
            m = re.search(r"\brank\s*:\s*(\d+)", line)
            if m:
                rank = int(m.group(1))
            m = re.search(r"exitcode\s*:\s*(-?\d+)", line)
            if m and rank is not None:
                found.append((rank, int(m.group(1))))
                rank = None
        return found
    root = next((i for i, line in enumerate(stderr_lines) if "Root Cause" in line), len(stderr_lines))
    return parse(stderr_lines[root:]) + parse(stderr_lines[:root])


def _culprit(stderr_lines: list[str]) -> tuple[int, int] | None:
    """The rank that brought the run down. A rank killed by a signal other than the SIGTERM torchrun
    sends to the survivors comes first: the others' errors (a lost peer in a collective) follow
    from it, even when torchrun happened to observe one of them first."""
    failures = _failures(stderr_lines)
    killed = [f for f in failures if f[1] < 0 and f[1] != -signal.SIGTERM]
    return (killed or failures or [None])[0]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _last_event(events_path: Path) -> dict | None:
    if not events_path.is_file():
        return None
    last = None
    for ev in events.read_file(events_path):
        last = ev
    return last


def _terminate(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """End torchrun and the ranks, whatever state they are in: SIGTERM (torchrun relays it to the
    ranks) and SIGCONT (a stopped process acts on SIGTERM only once continued), then after
    `grace_s` SIGKILL to every descendant still there — the ranks run in sessions of their own,
    so killing torchrun's process group alone would leave them behind."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    if grace_s > 0:
        deadline = time.time() + grace_s
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
        for p in family:
            try:
                p.resume()
            except psutil.Error:
                pass
        try:
            proc.wait(grace_s)        # torchrun is this process's child: its exit code is kept
        except subprocess.TimeoutExpired:
            pass
        family = psutil.wait_procs(family, timeout=max(0.1, deadline - time.time()))[1]
    for p in family:
        try:
            p.kill()                   # SIGKILL ends a stopped process too
        except psutil.Error:
            pass
    if proc.poll() is None:
        proc.kill()


def run_ranks(argv: list[str], nproc: int, runs_dir: str | None, name: str, stream_events: bool,
              control_stdin: bool, run_dir: str | None = None, stall_timeout: float = 0.0) -> int:
    """Run `frelon train argv` on nproc ranks; `run_dir` given = a resumed run's folder;
    `stall_timeout` > 0 turns the stall watchdog on (see watchdog.py). Returns the exit code."""
    run_dir = _clear_rank_files(Path(run_dir) if run_dir else new_run_dir(runs_dir, name))
    writer = EventWriter(stream=sys.stdout if stream_events else None)
    writer.attach(RunFolder(run_dir).events)
    watchdog = Watchdog(run_dir, nproc, stall_timeout, writer.emit)
    cmd = launch_command(argv, nproc, str(run_dir))
    env = _rank_environment(nproc, run_dir)
    started = time.time()
    proc = _start_torchrun(cmd, env, stream_events)
    stop = StopFlag()                  # the engine's own: `stop` / end of stdin, SIGINT, SIGTERM
    stop.watch_signals()
    if control_stdin:
        stop.watch_stdin()
    tail, relaying = _relay_output(proc, writer, stream_events)
    stall = _supervise(proc, watchdog, stop, writer, nproc, run_dir)
    code = proc.wait()
    if relaying.is_alive():
        relaying.join(timeout=5)       # rank 0's last events before the launcher's own
    time.sleep(0.1)
    ended = _Ended(writer, run_dir, nproc, started)
    if stall is not None:
        return ended.stalled(stall)
    return ended.exited(code, list(tail))


def _clear_rank_files(run_dir: Path) -> Path:
    for stale in (run_dir / "ranks").glob("rank*"):     # heartbeats, stacks, errors of an earlier attempt
        stale.unlink(missing_ok=True)
    return run_dir


def _rank_environment(nproc: int, run_dir: Path) -> dict:
    """The ranks' environment: the CPU threads shared between them, NCCL's flight recorder."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc))))
    # NCCL ranks: PyTorch's flight recorder keeps the last collectives and, when a collective
    # times out, dumps them beside the stacks (ranks/nccl_trace_rank_<R>); gloo ignores these
    env.setdefault("TORCH_NCCL_TRACE_BUFFER_SIZE", "2000")
    env.setdefault("TORCH_NCCL_DUMP_ON_TIMEOUT", "1")
    env.setdefault("TORCH_NCCL_DEBUG_INFO_TEMP_FILE", str(run_dir / "ranks" / "nccl_trace_rank_"))
    return env


def _start_torchrun(cmd: list[str], env: dict, stream_events: bool) -> subprocess.Popen:
    # rank 0's events come through here: the launcher is the one writer of stdout, so its own
    # events (heartbeat, error) never land inside one of rank 0's lines
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE if stream_events else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=True,
                            preexec_fn=_end_with_the_launcher if _PRCTL is not None else None)


def _find_prctl():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
    except (OSError, AttributeError):
        return None


_PRCTL = _find_prctl()
PR_SET_PDEATHSIG = 1


def _end_with_the_launcher() -> None:
    """In torchrun's process, before it starts (Linux): SIGTERM when the launcher dies, even
    killed by SIGKILL; torchrun then ends its ranks (SIGTERM, SIGKILL after its own timeout), so
    a killed launcher leaves no process behind."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def _relay_output(proc: subprocess.Popen, writer: EventWriter, stream_events: bool) -> tuple[deque, threading.Thread]:
    """Two threads: torchrun's stderr passed on (its last 200 lines kept: the tail), and with
    `stream_events` rank 0's event lines relayed through the writer. Returns (tail, relaying thread)."""
    tail: deque[str] = deque(maxlen=200)

    def pump_stderr():
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            sys.stderr.write(line)

    def pump_stdout():
        for line in proc.stdout:
            writer.relay(line)

    threading.Thread(target=pump_stderr, daemon=True).start()
    relaying = threading.Thread(target=pump_stdout, daemon=True)
    if stream_events:
        relaying.start()
    return tail, relaying


def _supervise(proc: subprocess.Popen, watchdog: Watchdog, stop: StopFlag, writer: EventWriter,
               nproc: int, run_dir: Path):
    """Until torchrun ends: the watchdog looks every second (a stall is reported and ends the
    ranks at once); a stop request goes to rank 0, and ranks still running STOP_GRACE_S after it
    are ended. Returns the stall, or None."""
    stop_sent, deadline = False, None
    next_look = time.time() + 1.0
    while proc.poll() is None:
        time.sleep(0.2)
        if time.time() >= next_look:
            next_look = time.time() + 1.0
            stall = watchdog.check()
            if stall is not None:
                writer.emit("error", **stall_error(stall, nproc, run_dir))
                _terminate(proc, grace_s=0)     # hung ranks do not heed SIGTERM; rank 0 has saved
                return stall
        if stop() and not stop_sent:      # rank 0 hears it and tells the others at the next step
            stop_sent = True
            _send_stop(proc)
        if stop_sent:
            deadline = deadline or time.time() + STOP_GRACE_S
            if time.time() > deadline:     # the ranks did not end: escalate
                _terminate(proc)
    return None


def _send_stop(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.write("stop\n")
        proc.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass


class _Ended:
    """The launcher's last words once torchrun has ended: its own `error` and `run_finished`
    when the ranks could not say them, a line on stderr, the exit code."""

    def __init__(self, writer: EventWriter, run_dir: Path, nproc: int, started: float):
        self.writer, self.run_dir, self.nproc, self.started = writer, run_dir, nproc, started

    def stalled(self, stall) -> int:
        self._failed()
        print(f"frelon: error: rank {stall.beat.rank} stalled in {stall.beat.phase}; stacks in {stall.stack_file.parent}",
              file=sys.stderr)
        return 1

    def exited(self, code: int, tail: list[str]) -> int:
        last = _last_event(RunFolder(self.run_dir).events) or {}
        if code != 0 and last.get("type") == "run_finished" and last.get("status") in ("completed", "stopped"):
            # the run ended and its checkpoint is saved; a rank that then fails while tearing down
            # (gloo can abort at interpreter exit) does not undo that
            print(f"frelon: warning: a rank ended badly after the run {last['status']} ({_describe_exit(code)}); "
                  f"the run folder is complete: {self.run_dir}", file=sys.stderr)
            self.writer.close()
            return 0
        if code != 0 and last.get("type") != "run_finished":
            error, rank = _rank_failure(tail, self.nproc, self.run_dir)
            self.writer.emit("error", **error, rank=rank)
            self._failed()
            print(f"frelon: error: {error['message']}", file=sys.stderr)
            return 1
        self.writer.close()
        return code

    def _failed(self) -> None:
        self.writer.emit("run_finished", status="failed", epochs_done=None, best=None,
                         duration_s=time.time() - self.started, run_dir=str(self.run_dir))
        self.writer.close()


def _rank_failure(tail: list[str], nproc: int, run_dir: Path) -> tuple[dict, int | None]:
    """The `error` fields of a run whose rank failed, and that rank: from torchrun's summary, in
    the rank's own words when it left them in the run folder (e.g. out of memory)."""
    culprit = _culprit(tail)
    rank = culprit[0] if culprit else None
    who = f"rank {rank}" if rank is not None else "a rank"
    how = _describe_exit(culprit[1]) if culprit else "ended"
    resume = f"continue from the last checkpoint with: frelon train --resume {run_dir}"
    error = dict(kind="distributed", message=f"{who} of {nproc} failed ({how}); the other ranks were stopped",
                 hint=f"see the messages above; {resume}", traceback="\n".join(tail[-40:]))
    said = read_rank_error(run_dir, rank) if rank is not None and culprit[1] > 0 else None
    if said:       # the rank said why (e.g. out of memory): that is the run's error
        error.update(kind=said["kind"], message=f"{who} of {nproc}: {said['message']}",
                     hint=f"{said['hint']}; then {resume}" if said.get("hint") else resume,
                     traceback=said.get("traceback") or error["traceback"])
    return error, rank
