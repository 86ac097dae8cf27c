"""`python -m flowforge ...` runs the CLI (also what `torchrun -m flowforge run spec.yaml` uses)."""

from flowforge.cli import main

if __name__ == "__main__":
    main()
