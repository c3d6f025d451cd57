"""Training of the relation model's heads: ``python -m relations.training`` rewrites the committed artefact."""
