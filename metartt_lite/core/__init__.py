"""Lowest layer: box maths, configuration dataclasses, checkpoint I/O and every weight path, errors and small utilities."""
