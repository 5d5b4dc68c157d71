"""``stylejax bench``: compiled against op-by-op execution, image sizes, sweep modes and
PyTorch side by side. PyTorch is imported only inside the functions that need it."""
