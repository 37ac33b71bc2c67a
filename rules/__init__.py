"""Decisions over facts: the triage policy now, the rule language with the pipeline."""
