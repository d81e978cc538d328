"""Old home of the `decontam` command, kept because installed `decontam` scripts and
`python -m decontam.cli` (TEAM.md) still point here; the command is `curate.cli.decontam`.
"""

from curate.cli.decontam import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
