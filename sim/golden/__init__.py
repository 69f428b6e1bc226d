"""Bit-exact numpy golden models, one module per kind of operation."""
