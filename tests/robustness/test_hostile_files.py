"""Files made to cost minutes or gigabytes, and names made to take over the terminal (issue 26,
items 6, 7 and 9), through the real command line.

The bombs are refused in under 5 s and 200 MB: the YAML one measured from outside (the `frelon
check` process's resident set, polled with psutil, the process killed past the limits so that a
failing run stays cheap); the zip one from inside a process that runs `frelon train` through
`frelon.cli.main` after torch's own import, whose resident set (~0.5 GB) would hide the figure
(Linux VmHWM reset after the imports, as tests/engine/rss_peak_check.py does)."""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import psutil
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import TINY, make_colour_folder  # noqa: E402

MB = 1 << 20
SECONDS, MEMORY = 5.0, 200 * MB


def frelon(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def one_error_line(stderr: str) -> str:
    """The one `frelon: error:` line, the last on stderr (`train` says what it read first), no traceback."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("frelon: error: ")]
    assert errors == lines[-1:] and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


def watched(args: list, seconds: float = 2 * SECONDS, memory: int = 2 * MEMORY) -> tuple[int, str, float, int]:
    """`frelon ARGS` with its resident set polled every 10 ms: (exit code, stderr, seconds, peak
    bytes). Past `seconds` or `memory` it is killed (exit code None): a bomb that goes off costs
    the test no more than that."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "frelon", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    watch, peak, code = psutil.Process(proc.pid), 0, None
    while True:
        try:
            peak = max(peak, watch.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
        code = proc.poll()
        if code is not None:
            break
        if time.perf_counter() - start > seconds or peak > memory:
            proc.kill()
            proc.wait()
            code = None
            break
        time.sleep(0.01)
    return code, proc.stderr.read(), time.perf_counter() - start, peak


def yolo_set(root: Path, data_yaml: str) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (48, 40), (90, 120, 30)).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(data_yaml)
    return root


# ---------------------------------------------------------------- 6. YOLO data.yaml

def _laughs() -> str:
    """Billion laughs: 9 levels of 9 aliases, 9⁹ 'lol's as a list under `names` (448 bytes).
    Before: > 120 s and 1–2 GB, and a 1.5 GB 'class name'."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines + ["names: [*a8, wasp]"]) + "\n"


def _merges() -> str:
    """24 levels of `<<` merge keys, each merging the level below twice: the safe loader itself
    runs for minutes on these, whatever `names` holds."""
    lines = ["m0: &m0 {k0: 1}"] + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 25)]
    return "\n".join(lines + ["names: [hornet, wasp]"]) + "\n"


@pytest.mark.parametrize("bomb", [_laughs, _merges])
def test_a_yaml_alias_bomb_is_refused_in_seconds_and_megabytes(tmp_path, bomb):
    data = yolo_set(tmp_path / "set", bomb())
    code, stderr, seconds, peak = watched(["check", "--data", data, "--task", "detect"])
    assert code == 1, f"killed after {seconds:.1f} s at {peak / MB:.0f} MB" if code is None else stderr
    assert seconds < SECONDS and peak < MEMORY, (seconds, peak / MB)
    line = one_error_line(stderr)
    assert "alias *" in line.split("data.yaml: ", 1)[1] and len(line) < 400


@pytest.mark.parametrize("names, why", [("[[1, 2], wasp]", "list"), ("[~, wasp]", "null"),
                                        ("{0: {a: 1}, 1: wasp}", "dict"), ("[yes, no]", "boolean"),
                                        ("[1.5, wasp]", "float"), (f"[{'h' * 300}, wasp]", "300 characters")])
def test_class_names_are_text_or_whole_numbers_of_reasonable_length(tmp_path, names, why):
    """Before: '[1, 2]', 'None', 'True', '1.5' and any length were taken as class names."""
    data = yolo_set(tmp_path / "set", f"names: {names}\n")
    r = frelon("check", "--data", data, "--task", "detect")
    assert r.returncode == 1, r.stdout + r.stderr
    line = one_error_line(r.stderr)
    assert "names[0]" in line and why in line, line


def test_plain_names_and_numbers_still_read(tmp_path):
    data = yolo_set(tmp_path / "set", "names: {0: hornet, 1: 2}\n")
    r = frelon("check", "--data", data, "--task", "detect", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["classes"] == ["hornet", "2"]


# ---------------------------------------------------------------- 7. a .pth zip bomb

class _Storage:
    def __init__(self, n: int):
        self.n = n


class _Tensor:
    def __init__(self, n: int):
        self.n = n

    def __reduce__(self):
        import torch
        return torch._utils._rebuild_tensor_v2, (_Storage(self.n), 0, (self.n,), (1,), False, collections.OrderedDict())


class _TorchPickler(pickle.Pickler):
    """Pickles a float tensor the way torch.save does: its storage as a persistent id."""

    def persistent_id(self, obj):
        import torch
        return ("storage", torch.FloatStorage, "0", "cpu", obj.n) if isinstance(obj, _Storage) else None


def zip_bomb(path: Path, expanded: int = 2 << 30) -> Path:
    """A torch.save-style zip (data.pkl, byteorder, version, data/0) whose one tensor's bytes are a
    DEFLATE member of `expanded` zero bytes, 2 MB on disk for 2 GiB: torch.load (weights_only
    or not) inflates it all before anything can look at it. The zip is written by hand because
    zipfile cannot store already-compressed data; the deflate stream is one full-flushed 1 MiB
    block repeated, which inflates as one stream."""
    chunk = 1 << 20
    pkl = io.BytesIO()
    _TorchPickler(pkl, protocol=2).dump({"weight": _Tensor(expanded // 4)})
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(bytes(chunk)) + z.flush(zlib.Z_FULL_FLUSH)
    deflated = block * (expanded // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(expanded // chunk):
        crc = zlib.crc32(bytes(chunk), crc)
    members = [("archive/data.pkl", pkl.getvalue(), 0, zlib.crc32(pkl.getvalue()), len(pkl.getvalue())),
               ("archive/byteorder", b"little", 0, zlib.crc32(b"little"), 6),
               ("archive/version", b"3\n", 0, zlib.crc32(b"3\n"), 2),
               ("archive/data/0", deflated, 8, crc, expanded)]
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, size in members:
        n, offset = name.encode(), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload), size, len(n), 0)
        out += n + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(payload), size,
                               len(n), 0, 0, 0, 0, 0, offset) + n
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out))
    return path


_MEASURED_CLI = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    import torchvision.models
    from frelon.cli import main
    from frelon.engine.training import run                  # the libraries' own memory, before the baseline
    torch.ones(1).sum()
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
    with open("/proc/self/clear_refs", "w") as f:      # VmHWM := VmRSS from here on
        f.write("5")
    base, cpu, wall = status("VmRSS:"), time.process_time(), time.perf_counter()
    code = main(sys.argv[1:])
    print(json.dumps({"code": code, "grown": status("VmHWM:") - base, "cpu": time.process_time() - cpu,
                      "wall": time.perf_counter() - wall}))
""")


def test_a_zip_bomb_pth_is_refused_before_torch_expands_it(tmp_path):
    """Before: the 2 MB file became a 2 GiB tensor (2.7 GB resident, ~6 s) before the shapes were
    found not to fit. Refused from the zip's directory: under 5 s of CPU, under 200 MB grown."""
    bomb = zip_bomb(tmp_path / "bomb.pth")
    assert bomb.stat().st_size < 3 * MB
    data = make_colour_folder(tmp_path / "data", per_class=2)
    r = subprocess.run([sys.executable, "-c", _MEASURED_CLI, "train", "--data", data, "--out", tmp_path / "runs",
                        *TINY, "--backbone", "resnet18", "--weights", bomb, "--max-steps", "1", "--epochs", "1"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    measured = json.loads(r.stdout.strip().splitlines()[-1])
    assert measured["grown"] < MEMORY and measured["cpu"] < SECONDS, measured
    assert measured["code"] == 1, r.stderr[-3000:]
    line = one_error_line(r.stderr)
    assert str(bomb) in line and "compressed" in line


def test_weights_saved_by_torch_still_load(tmp_path):
    import torch
    from frelon.engine.weights import read_state_dict
    torch.save({"w": torch.arange(6.0)}, tmp_path / "w.pth")
    assert torch.equal(read_state_dict(tmp_path / "w.pth")["w"], torch.arange(6.0))


# ---------------------------------------------------------------- 9. names that drive the terminal

HOSTILE = ["hornet\nfrelon: error: forged line", "\x1b[2J\x1b[31mwasp", "\u202eteb"]   # newline, ESC, bidi override


def _raw(text: str) -> list[str]:
    return [c for c in ("\x1b", "\u202e", "forged line\n", "\nfrelon: error: forged") if c in text]


def test_control_and_bidi_characters_from_the_data_are_shown_escaped(tmp_path):
    """Before: `frelon check` printed the class names raw (the ESC sequence cleared the screen, the
    newline forged a `frelon: error:` line, U+202E showed 'bet' reversed). The JSON stays exact."""
    Image.new("RGB", (48, 40), (90, 120, 30)).save(tmp_path / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 48, "height": 40}],
           "annotations": [{"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": [2, 2, 10, 10]} for i in range(3)],
           "categories": [{"id": i + 1, "name": n} for i, n in enumerate(HOSTILE)]}
    coco = tmp_path / "set.json"
    coco.write_text(json.dumps(doc))
    r = frelon("check", "--data", coco, "--task", "detect")
    assert r.returncode == 0, r.stderr
    shown = r.stdout + r.stderr
    assert _raw(shown) == [], shown
    for escaped in ("hornet\\nfrelon: error: forged line", "\\x1b[2J\\x1b[31mwasp", "\\u202eteb"):
        assert escaped in r.stdout, r.stdout
    r = frelon("check", "--data", coco, "--task", "detect", "--json")
    assert json.loads(r.stdout)["classes"] == HOSTILE


def test_an_error_line_naming_a_hostile_path_is_one_escaped_line(tmp_path):
    evil = tmp_path / "x\x1b[2J\u202e\nfrelon: error: forged"
    r = frelon("annotations", "--data", evil / "set.json")
    line = one_error_line(r.stderr)
    assert r.returncode == 1 and _raw(r.stderr) == [] and "\\x1b[2J\\u202e\\n" in line, r.stderr


def test_the_training_echo_shows_names_from_the_data_escaped(capsys):
    """What `frelon train` prints for a person (no --events -): a warning or a log line naming a
    class goes through the same escaping; the event itself keeps the exact text."""
    from frelon.common import events
    from frelon.engine.commands.console import training_line
    report = events.make("data_report", splits={"train": {"images": 2}}, skipped=[],
                         warnings=[f"class {HOSTILE[0]} has 1 image"])
    training_line(report)
    training_line(events.make("log", level="warning", message=f"{HOSTILE[1]} and {HOSTILE[2]}"))
    shown = capsys.readouterr().err
    assert _raw(shown) == [] and len(shown.strip().splitlines()) == 3, shown
    assert json.loads(events.dumps(report))["warnings"] == [f"class {HOSTILE[0]} has 1 image"]   # the event: exact
