"""Engagements proposed from public pages: discover candidates, list them, accept or reject, export.

Candidates are never facts: ``discover`` stores them as ``proposed`` in ``engagement_candidates``;
an analyst's ``accept`` writes an engagement (validated like a registry line, with the evidence
URL), ``reject`` records the decision, and ``export_accepted`` writes a registry YAML fragment.
"""
