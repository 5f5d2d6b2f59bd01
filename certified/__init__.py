"""focalspec.certified: the certified numbers, above the reference that produces them.

Generation and proof of the golden file (``python -m focalspec.certified.generate --check``),
the ``focalspec.golden(...)`` API, the ``focalspec golden`` command, its query language, the
peer-errata check and the Sphinx extension.  The definitions and the data they certify stay in
``focalspec.spec`` (the catalogue, ``spec/golden/*.json``), which imports nothing from here.
"""
