"""``python -m assay``: the same as the ``assay`` command."""

from assay.cli.script import run

run()
