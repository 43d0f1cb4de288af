"""shiftrnn: the command line, the flow and the reports (the front door; thin)."""

__version__ = "0.1.0"
