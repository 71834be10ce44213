"""One module per command: a function of typed keyword arguments that calls the layer below and returns an Outcome."""
