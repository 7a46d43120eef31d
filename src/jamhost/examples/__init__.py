"""Example JAM services built from source with `jamhost.pvm.assembler`.

Each module exposes `build() -> bytes`, the service code blob E(↕m, p) of GP §9.2 that
jamhost stores as a service's code, and writes it to stdout when run as a module:
`python -m jamhost.examples.counter > counter.pvm`. See examples/README.md.
"""
