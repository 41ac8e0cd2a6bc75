"""The CI gate: ``rnngrad check``, its configuration, baselines, and test-suite helpers.

What lives here: ``[tool.rnngrad]`` and the keyword settings of :func:`rnngrad.check`, derived
from the options dataclasses (:mod:`.config`); model arguments as files, folders and globs
(:mod:`.models`); measuring and evaluating thresholds, the typed check report (:mod:`.check`);
baselines (:mod:`.baseline`); the pytest plugin (:mod:`.pytest_plugin`, entry point
``pytest11: rnngrad``). :mod:`rnngrad.testing` (``assert_healthy``) builds on it.

What it may import: the analyses (:mod:`rnngrad.spectrum`, :mod:`rnngrad.bptt`) and the layers
below them, :mod:`rnngrad.report`. Never a renderer.
"""
