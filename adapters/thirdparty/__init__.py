"""Third-party focal losses: one module per library, named ``<library>_adapter.py`` (and the two bases,
``adapters/torch_base`` and ``tf_base``).  Each module's ``adapters()`` is one line of ``registry.BUILTIN``."""
