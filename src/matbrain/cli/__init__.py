"""The ``matbrain`` command line: thin commands over the library."""
