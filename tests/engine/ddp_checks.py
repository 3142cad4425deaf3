"""Run under torchrun with 2 CPU ranks: ddp_check.py, then ddp_accumulate_check.py, in one process
group — one start-up of torchrun and its two ranks (~8 s on 2 cores) for both checks, each as it is
when run alone (each seeds and builds its own model and data).

argv: the JSON file of ddp_check.py, then that of ddp_accumulate_check.py."""
from __future__ import annotations

import sys

import ddp_accumulate_check
import ddp_check

from frelon.engine import distributed as D


def main(ddp_out: str, accumulate_out: str) -> None:
    leave = D.teardown
    D.teardown = lambda together=False: None       # the first check leaves the group to the second
    try:
        ddp_check.main(ddp_out)
        ddp_accumulate_check.main(accumulate_out)
    finally:
        D.teardown = leave
    D.teardown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
