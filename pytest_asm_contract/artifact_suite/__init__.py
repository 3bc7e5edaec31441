"""The bundled artifact-store suite (ART rules): ``pytest --asm-artifact-store=...`` runs it, or
``from pytest_asm_contract.artifact_suite import *`` in a test module of your own, next to an
``asm_artifact_store_factory`` fixture.
"""

from pytest_asm_contract.artifact_suite.test_artifacts import TestArtifacts

__all__ = ["TestArtifacts"]
