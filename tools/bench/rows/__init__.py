"""The row families of `make bench`, one module each; tools/bench/run.py registers them."""
