"""The bundled artifact-store suite (ART rules), run by ``pytest --asm-artifact-store=...``."""
