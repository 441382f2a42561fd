#!/usr/bin/env python3
"""featuretree command line.

Subcommands are imported only when invoked, so that text-only work (build, new,
clean) never pays for importing torch.
"""
from generator.cli import main

if __name__ == "__main__":
    main()
