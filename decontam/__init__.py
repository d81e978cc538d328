"""Benchmark decontamination: n-gram overlap, embedding neighbours and an LLM judge.

The public entry point is :func:`decontam.check.run_check`; the command line
(`decontam check`, `decontam rephrase`, `decontam calibrate`) is a thin layer over it.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
