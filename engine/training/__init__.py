"""Training, shared by classification and detection, on 1 or N ranks — one file per job:

`step.py`        one training step (optimizer, AMP, train mode, `Step`): what the loop, the memory
                 forecast (plan.py) and the LR finder all run
`plan.py`        the memory forecast (`frelon plan`) and `--batch-size auto`, measured on the real step
`loaders.py`     the training and validation loaders: seeded samplers, workers, the batch per rank
`checkpoints.py` `Progress` and the `last` / `best` checkpoints: save, exact resume, the save
                 from another thread (the stall watchdog's rescue, a late stop)
`reports.py`     what the run says: `run_started` / `run_finished` fields, when a `step` event is due
                 and what it carries, a failure as an `error` event's fields
`loop.py`        one epoch (`train_one_epoch`): micro-batches, accumulation, the per-step agreement
                 of the ranks, the epoch's end (evaluation, best, checkpoints)
`stopping.py`    a stop the loop does not take in time, answered from the stop flag's side thread
`run.py`         `Trainer` (run folder, model, optimizer, LR plan, DDP, out-of-memory halving) and
                 `run_training`, the one entry point
"""
