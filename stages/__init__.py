"""One thin module per DVC stage: read params, call the ``ban`` library, write declared outputs."""
