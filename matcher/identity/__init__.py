"""Identity: from a person's record to the tokens that are compared.

Record sources (CSV) and their column mapping, the versioned normalisations (n1, n2)
with their transliteration tables, and the match keys that turn normalised fields
into token strings. Pure apart from reading record files: it imports nothing from
matcher's protocols, sessions, server, storage or clients, and never grpc.
"""
