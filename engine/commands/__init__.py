"""The `frelon` subcommands the engine runs: `handlers.py` (one handler per subcommand, each error a
line and an exit code), and each command's own work: predict, evaluate, export, info, lr_find,
review, robustness, preview (augmentation preview); `outputs.py` checks what a command will write,
`console.py` what a person reads. Training (`train`) is training/, the memory forecast (`plan`)
training/forecast.py."""
