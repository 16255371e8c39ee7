"""The run engine: status machine, steps, tool loop and streaming events."""
