"""The pipeline application built on the ``ban`` library: the study launcher, reports, the paper's tables
and presets. It may import ``ban``; ``ban`` never imports it."""

from ban.core.errors import require_extra

# the import names of the extra `pipeline` (pyproject.toml; tests/test_package.py keeps the two equal)
PIPELINE_MODULES = ("dvc", "dvclive", "hydra", "matplotlib", "pandas", "packaging", "psutil", "scipy",
                    "sklearn", "tabulate")

require_extra("pipeline", PIPELINE_MODULES, "ban_pipeline (the stages, reports, paper tables and launcher)")
