"""Romanisation tables of normalisation n3, as data, one module per script, each named after its standard.

Every table states its source. The tables are part of the token bytes of n3: any change to one is
a new normalisation version (the conformance vectors ``matcher/identity/vectors/n3.v1.json`` fail first).
"""
