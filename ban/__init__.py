"""Born-Again Networks: born-again distillation of image classifiers and language models."""
