"""One module per ``torchrl-bc`` subcommand; each holds argument wiring, not library logic."""
