"""The JAM domain: GP types and their codec, hashing, errors. Pure: no I/O."""
