"""Beyond one machine, with what one machine can run: `--print-launch` prints the torchrun command
for each machine and writes a SLURM batch script, and both train.

- The printed command, run as printed on one machine with two CPU ranks, trains (the reference).
- The batch script, run under a stand-in `srun` that starts one task per "node" on this machine
  as SLURM would (SLURM_NODEID, SLURM_NNODES…), trains the same run on two nodes of one CPU rank
  each, meeting through torchrun's c10d rendezvous: step for step the same losses and, at the
  end, the same weights as the reference.
- The script's text, checked against what srun would run on three nodes (a stand-in Python that
  records its arguments): one torchrun per node, the rendezvous on the first node, the run folder
  on the shared --out named after the job, and after a requeue a resume of that folder.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from frelon.engine import launch

from runhelp import TINY, events_of, only_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}     # the same threads in both runs: the same sums

FAKE_SRUN = """#!/bin/bash
# srun inside a batch job of SLURM_NNODES nodes, one task per node: here every task on this machine
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
    SLURM_NODEID=$i SLURM_PROCID=$i SLURM_LOCALID=0 "$@" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm(tmp: Path, hosts: list[str]) -> dict:
    """PATH with stand-ins for srun and scontrol (`show hostnames` prints `hosts`)."""
    bin_dir = tmp / "slurm-bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "scontrol").write_text("#!/bin/bash\nprintf '%s\\n' " + " ".join(hosts) + "\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NNODES": str(len(hosts)),
            "SLURM_JOB_NODELIST": "node[0-9]"}


def _print_launch(*args, cwd: Path) -> tuple[str, Path]:
    r = subprocess.run([sys.executable, "-m", "frelon", "train", *map(str, args), "--print-launch"],
                       capture_output=True, text=True, timeout=120, env=ENV, cwd=cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    command = [line for line in r.stdout.splitlines() if line.strip() and not line.startswith("#")]
    assert len(command) == 1
    slurm = next(line for line in r.stdout.splitlines() if line.startswith("# SLURM"))
    script = Path(shlex.split(slurm.split(": ", 1)[1])[-1])
    return command[0], script


def _steps(run: Path) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in events_of(run) if e["type"] == "step"]


def test_two_nodes_on_localhost_train_as_one_machine_of_two_ranks(colour_data, tmp_path):
    spaced = tmp_path / "my photos"                            # the printed command quotes what needs it
    shutil.copytree(colour_data, spaced)
    common = ["--data", spaced, *TINY, "--batch-size", "2", "--backbone", "resnet18", "--epochs", "1",
              "--max-steps", "3", "--log-interval", "0", "--lr", "0.001"]
    # the reference: the printed torchrun command, one machine of two CPU ranks
    command, _ = _print_launch(*common, "--out", tmp_path / "one", "--processes", "2", cwd=tmp_path)
    argv = shlex.split(command)
    assert argv[1:3] == ["-m", "torch.distributed.run"] and argv[argv.index("frelon") - 1:][3:] == \
        [str(a) for a in [*common, "--out", tmp_path / "one", "--processes", "2"]]
    line = re.sub(r"\$MASTER_ADDR:\d+", f"$MASTER_ADDR:{_free_port()}", command)
    env = dict(ENV, NNODES="1", NODE_RANK="0", MASTER_ADDR="127.0.0.1", JOB_ID="reference")
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    one = only_run(tmp_path / "one")

    # the batch script on two "nodes" of this machine, one CPU rank each
    _, script = _print_launch(*common, "--out", tmp_path / "shared", "--processes", "1", cwd=tmp_path)
    env = dict(ENV, **_slurm(tmp_path, ["127.0.0.1", "127.0.0.1"]), SLURM_JOB_ID="4242", MASTER_PORT=str(_free_port()))
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    two = only_run(tmp_path / "shared")
    assert two.name.endswith("-4242")                                   # named after the job
    started = [next(e for e in events_of(run) if e["type"] == "run_started") for run in (one, two)]
    assert [s["world_size"] for s in started] == [2, 2] and started[1]["global_batch"] == 4
    assert _steps(two) == _steps(one) and len(_steps(one)) == 3          # step for step
    assert events_of(two)[-1]["status"] == "completed"
    a, b = (load_file(run / "checkpoints" / "last.safetensors") for run in (one, two))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


RECORDER = """#!/bin/bash
# a stand-in Python: records the arguments it was started with, one file per node
printf '%s\\n' "$@" > "$RECORDS/node$SLURM_NODEID"
"""


def test_the_batch_script_runs_one_torchrun_per_node_and_resumes_after_a_requeue(tmp_path):
    shared = tmp_path / "shared runs"
    python = tmp_path / "python"
    python.write_text(RECORDER)
    python.chmod(0o755)
    argv = ["--data", "/data/hornets", "--gpus", "4", "--out", str(shared)]
    text = launch.sbatch_script(argv, 4, str(shared), "resnet18-hornets", python=str(python))
    header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert {"#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=4", "#SBATCH --requeue"} <= set(header)
    assert text.splitlines()[0] == "#!/bin/bash" and header == text.splitlines()[3:3 + len(header)]
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    records = tmp_path / "records"
    records.mkdir()
    env = dict(os.environ, **_slurm(tmp_path, ["gpu-a", "gpu-b", "gpu-c"]), SLURM_JOB_ID="777", RECORDS=str(records))
    env.pop("MASTER_PORT", None)

    def srun_ran() -> list[list[str]]:
        for f in records.iterdir():
            f.unlink()
        r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return [(records / f"node{i}").read_text().splitlines() for i in range(3)]

    run_dir = f"{shared}/resnet18-hornets-777"
    torchrun = ["-m", "torch.distributed.run", "--nnodes", "3", "--rdzv-backend", "c10d",
                "--rdzv-endpoint", "gpu-a:29500", "--rdzv-id", "777", "--nproc-per-node", "4", "-m", "frelon", "train"]
    first = srun_ran()
    assert first == [[*torchrun, *argv, "--run-dir", run_dir]] * 3           # the same command on every node
    (Path(run_dir) / "checkpoints").mkdir(parents=True)
    (Path(run_dir) / "checkpoints" / "last.safetensors").write_bytes(b"")   # the job ran, then was requeued
    assert srun_ran() == [[*torchrun, "--resume", run_dir]] * 3
