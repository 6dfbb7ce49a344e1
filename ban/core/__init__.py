"""What every stage uses: params and their checks, errors, file paths and safe file I/O, registries."""
