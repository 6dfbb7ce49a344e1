"""The pipeline application built on the ``ban`` library: the study launcher, reports, the paper's tables
and presets. It may import ``ban``; ``ban`` never imports it."""
