"""Files, for the weights I/O and the command line (never for the method in
``stylejax._src``): image files (load, PNG with metadata, output checks) and atomic writes."""
