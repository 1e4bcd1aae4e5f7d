"""Checks for the chapters' exercises, one module per chapter (chNN.py)."""
