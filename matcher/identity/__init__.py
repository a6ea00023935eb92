"""Identity: from a person's record to the tokens that are compared.

Record sources (CSV) and their column mapping, the versioned normalisations (n1, n2, n3)
with their transliteration tables (n3: the per-scheme tables in schemes/ and the
conformance vectors vectors/n3.v1.json, made from vectors/n3/spellings.json), and the match
keys that turn normalised fields into token strings. Pure apart from reading record files: it imports nothing from
matcher's protocols, sessions, server, storage or clients, and never grpc.
"""
