"""The bundled contract suite. ``pytest --asm-store=...`` runs it; or import its classes:

    from pytest_asm_contract.suite import *  # noqa: F403

in a test module of your own, next to an ``asm_store_factory`` fixture.
"""
