"""`python -m curate.cli ...` runs the `curate` command."""

from curate.cli import main

if __name__ == "__main__":
    main()
