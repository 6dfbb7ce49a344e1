"""The prepared-data format and the helpers datasets and domains share to make and read it."""
