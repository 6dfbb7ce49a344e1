"""The commands users run by hand, one module each: ``main(argv, prog)`` parses the options, calls the
application and prints. ``python -m stages.X`` and ``ban X`` both run the same ``main``."""
